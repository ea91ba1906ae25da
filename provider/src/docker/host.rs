//! One Docker host address, as the docker CLI reads `DOCKER_HOST`: `unix:///path`,
//! `tcp://host[:port]` (a bare `host:port` is tcp too), `ssh://[user@]host[:port]`.

use std::fmt;
use std::path::PathBuf;

use crate::tls::TlsSettings;

/// Where an Engine listens and how to reach it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DockerHost {
    /// A socket on this machine.
    Unix(PathBuf),
    /// `host:port`, in plain text or, with `tls`, TLS (the CA, client certificate and key as
    /// PEM, read from the files the setting names).
    Tcp {
        /// `host:port`.
        address: String,
        /// Client TLS settings; `None` speaks plain text.
        tls: Option<TlsSettings>,
    },
    /// `ssh [-l user] [-p port] host docker system dial-stdio`.
    Ssh {
        /// `-l user`; `None` leaves it to ssh's configuration.
        user: Option<String>,
        /// The host to dial.
        host: String,
        /// `-p port`; `None` leaves it to ssh's configuration.
        port: Option<u16>,
    },
}

/// The Engine's default port without TLS and with it (as the docker CLI picks them).
const PLAIN_PORT: u16 = 2375;
const TLS_PORT: u16 = 2376;

impl DockerHost {
    /// Parses an address; `tls` says whether TLS will be added (it picks tcp's default port).
    pub(crate) fn parse(value: &str, tls: bool) -> Result<Self, String> {
        let v = value.trim();
        let (scheme, rest) = match v.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None if !v.is_empty() => ("tcp".to_owned(), v),
            None => return Err("empty address".into()),
        };
        match scheme.as_str() {
            "unix" => {
                if rest.is_empty() || !rest.starts_with('/') {
                    return Err("unix:// takes an absolute socket path, e.g. \
                                unix:///var/run/docker.sock"
                        .into());
                }
                Ok(DockerHost::Unix(PathBuf::from(rest)))
            }
            "tcp" => {
                let hostport = rest.trim_end_matches('/');
                if hostport.contains('/') {
                    return Err("tcp:// takes host[:port], without a path".into());
                }
                let (host, port) = split_port(hostport)?;
                if host.is_empty() {
                    return Err("tcp:// needs a host".into());
                }
                let port = port.unwrap_or(if tls { TLS_PORT } else { PLAIN_PORT });
                let address = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                Ok(DockerHost::Tcp { address, tls: None })
            }
            "ssh" => parse_ssh(rest),
            "npipe" => Err("Windows named pipes (npipe://) are not supported".into()),
            "fd" => Err("fd:// is a daemon-side address; give unix://, tcp:// or ssh://".into()),
            other => Err(format!(
                "unknown scheme {other:?}: expected unix://, tcp:// or ssh://"
            )),
        }
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: unclosed [ in an IPv6 address"))?;
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_owned(), Some(p)),
            _ => (s.to_owned(), None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{p:?} is not a port"))?,
        ),
    };
    Ok((host, port))
}

fn parse_ssh(rest: &str) -> Result<DockerHost, String> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        // As the docker CLI: the remote Engine is whatever `docker` finds there.
        return Err("ssh:// takes [user@]host[:port], without a path".into());
    }
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => {
            if u.contains(':') {
                return Err("ssh:// takes no password; use a key or an ssh agent".into());
            }
            (Some(u.to_owned()).filter(|u| !u.is_empty()), h)
        }
        None => (None, rest),
    };
    let (host, port) = split_port(hostport)?;
    if host.is_empty() {
        return Err("ssh:// needs a host".into());
    }
    if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
        // Would be read as an ssh option.
        return Err("the host and user may not start with '-'".into());
    }
    Ok(DockerHost::Ssh { user, host, port })
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerHost::Unix(p) => write!(f, "unix://{}", p.display()),
            DockerHost::Tcp { address, tls: None } => write!(f, "tcp://{address}"),
            DockerHost::Tcp {
                address,
                tls: Some(_),
            } => write!(f, "tcp://{address} (TLS)"),
            DockerHost::Ssh { user, host, port } => {
                write!(f, "ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                if host.contains(':') {
                    write!(f, "[{host}]")?;
                } else {
                    write!(f, "{host}")?;
                }
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<DockerHost, String> {
        DockerHost::parse(s, false)
    }

    #[test]
    fn unix_tcp_and_ssh_addresses() {
        assert_eq!(
            p("unix:///var/run/docker.sock").unwrap(),
            DockerHost::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            p("tcp://10.0.0.1:2375").unwrap(),
            DockerHost::Tcp {
                address: "10.0.0.1:2375".into(),
                tls: None
            }
        );
        assert_eq!(
            p("10.0.0.1:2375").unwrap(),
            p("tcp://10.0.0.1:2375/").unwrap()
        );
        assert_eq!(
            p("tcp://docker").unwrap().to_string(),
            "tcp://docker:2375",
            "the plain port by default"
        );
        assert_eq!(
            DockerHost::parse("tcp://docker", true).unwrap(),
            DockerHost::Tcp {
                address: "docker:2376".into(),
                tls: None
            },
            "the TLS port with TLS"
        );
        assert_eq!(p("tcp://[::1]:99").unwrap().to_string(), "tcp://[::1]:99");
        assert_eq!(
            p("ssh://ci@build.example:2222").unwrap(),
            DockerHost::Ssh {
                user: Some("ci".into()),
                host: "build.example".into(),
                port: Some(2222)
            }
        );
        assert_eq!(
            p("ssh://build.example").unwrap(),
            DockerHost::Ssh {
                user: None,
                host: "build.example".into(),
                port: None
            }
        );
        assert_eq!(
            p("ssh://ci@build.example:2222").unwrap().to_string(),
            "ssh://ci@build.example:2222"
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        for (bad, says) in [
            ("", "empty"),
            ("unix://", "absolute socket path"),
            ("unix://relative.sock", "absolute socket path"),
            ("tcp://h:port", "not a port"),
            ("tcp://h:0", "not a port"),
            ("tcp://h:2375/v1.40", "without a path"),
            ("tcp://:2375", "needs a host"),
            ("ssh://u:pw@h", "no password"),
            ("ssh://h/var/run/docker.sock", "without a path"),
            ("ssh://-oProxyCommand=x", "'-'"),
            ("npipe:////./pipe/docker_engine", "named pipes"),
            ("http://h:1", "unknown scheme"),
        ] {
            let e = p(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
