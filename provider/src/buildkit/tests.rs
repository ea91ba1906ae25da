use super::*;

#[test]
fn endpoint_settings() {
    assert_eq!(
        Endpoint::from_setting(Some("unix:///run/buildkit/buildkitd.sock"), None).unwrap(),
        Endpoint::Unix("/run/buildkit/buildkitd.sock".into())
    );
    assert_eq!(
        Endpoint::from_setting(Some("tcp://10.0.0.1:1234"), None).unwrap(),
        Endpoint::Tcp {
            address: "10.0.0.1:1234".into(),
            tls: None
        }
    );
    assert_eq!(
        Endpoint::from_setting(Some("docker+unix:///x.sock"), None).unwrap(),
        Endpoint::DockerEngine(crate::docker::Engine::unix("/x.sock", "builder"))
    );
    assert!(matches!(
        Endpoint::from_setting(Some("ssh://ci@x:2222"), None),
        Ok(Endpoint::DockerEngine(e)) if e.to_string() == "ssh://ci@x:2222 from builder"
    ));
    assert!(matches!(
        Endpoint::from_setting(Some("docker+tcp://h:2376"), Some(&TlsSettings::default())),
        Ok(Endpoint::DockerEngine(crate::docker::Engine {
            host: crate::docker::DockerHost::Tcp { tls: Some(_), .. },
            ..
        }))
    ));
    let e = Endpoint::from_setting(Some("ssh://h/x"), None).unwrap_err();
    assert!(e.to_string().contains("without a path"), "{e}");
    let tls = TlsSettings::default();
    let e = Endpoint::from_setting(Some("unix:///b.sock"), Some(&tls)).unwrap_err();
    assert_eq!(e.describe("builder", "builderTls").0, "builderTls");
    assert!(matches!(
        Endpoint::from_setting(Some("tcp://h:1"), Some(&tls)),
        Ok(Endpoint::Tcp { tls: Some(_), .. })
    ));
    assert!(matches!(
        Endpoint::from_setting(None, None),
        Ok(Endpoint::DockerEngine(_)) | Err(InvalidSetting::Builder(_))
    ));
}

#[test]
fn secrets_not_in_debug() {
    let spec = BuildSpec {
        secrets: BTreeMap::from([("tok".to_string(), b"hunter2".to_vec())]),
        ..Default::default()
    };
    let s = format!("{spec:?}");
    assert!(s.contains("tok") && !s.contains("hunter2"));
}

#[test]
fn solve_error_carries_tail() {
    let e = BuildError::Solve {
        kind: SolveFailure::Other,
        endpoint: "Docker Engine at unix:///var/run/docker.sock".into(),
        message: "exit code: 3".into(),
        step: Some("[2/2] RUN boom".into()),
        log_tail: vec!["a".into(), "b".into()],
    };
    let s = e.to_string();
    assert!(s.contains("Docker Engine at unix:///var/run/docker.sock"));
    assert!(s.contains("failed step: [2/2] RUN boom"));
    assert!(s.ends_with("  a\n  b"));
}

/// The `Control.Session` tunnel (what a standalone buildkitd needs),
/// exercised against the Engine's embedded BuildKit, which answers it
/// too. It needs the test world's Engine, so the fast `cargo test --lib` step
/// leaves it out and `make test` runs it (`--include-ignored`) once the world is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test world's Docker Engine; make test runs it"]
async fn session_through_control_stream() {
    let socket = PathBuf::from(DEFAULT_DOCKER_SOCKET);
    let dir = std::env::temp_dir().join(format!("bk-tunnel-{}", new_id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/hello.txt"), new_id()).unwrap();
    let spec = BuildSpec {
        context_dir: dir.clone(),
        dockerfile: DockerfileSource::Inline(
            "FROM scratch\nCOPY sub/hello.txt /hello.txt\n".into(),
        ),
        ..Default::default()
    };
    let endpoint = Endpoint::DockerEngine(crate::docker::Engine::unix(socket, ""));
    let out = build_via(
        &endpoint,
        transport::SessionVia::ControlStream,
        &spec,
        Output::BuildOnly,
        Arc::new(Anonymous),
        Arc::new(crate::log::StderrLogger),
        CancellationToken::new(),
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.digest, None);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn unreachable_buildkitd_names_the_endpoint() {
    let dir = std::env::temp_dir().join(format!("bk-unreach-{}", new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spec = BuildSpec {
        context_dir: dir.clone(),
        dockerfile: DockerfileSource::Inline("FROM scratch\n".into()),
        ..Default::default()
    };
    for endpoint in [
        Endpoint::Unix(dir.join("no-such.sock")),
        Endpoint::Tcp {
            address: "127.0.0.1:1".into(),
            tls: None,
        },
    ] {
        let err = build(
            &endpoint,
            &spec,
            Output::BuildOnly,
            Arc::new(Anonymous),
            Arc::new(crate::log::StderrLogger),
            CancellationToken::new(),
        )
        .await
        .expect_err("nothing listens there");
        let msg = err.to_string();
        assert!(matches!(err, BuildError::Connect { .. }), "{msg}");
        assert!(msg.contains(&endpoint.to_string()), "{msg}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[allow(dead_code)]
fn build_future_is_send(e: &Endpoint, s: &BuildSpec) {
    fn is_send<T: Send>(_: T) {}
    is_send(build(
        e,
        s,
        Output::BuildOnly,
        Arc::new(Anonymous),
        Arc::new(crate::log::StderrLogger),
        CancellationToken::new(),
    ));
}
