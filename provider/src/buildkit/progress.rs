//! Following `Control.Status` for a build: vertex names become status lines,
//! warnings become warnings, and the tail of each step's output is kept so a
//! failure can say what the failing step printed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bollard_buildkit_proto::moby::buildkit::v1::{StatusRequest, StatusResponse};

use super::transport::Control;
use crate::log::{Level, Logger};

/// Lines of output kept per step.
pub(crate) const TAIL_LINES: usize = 20;
const MAX_LINE: usize = 400;

#[derive(Default)]
struct LogTail {
    lines: VecDeque<String>,
    partial: Vec<u8>,
}

impl LogTail {
    fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut complete = Vec::new();
        for &b in bytes {
            if b == b'\n' || b == b'\r' {
                if !self.partial.is_empty() {
                    let line = String::from_utf8_lossy(&self.partial).into_owned();
                    self.partial.clear();
                    complete.push(line.clone());
                    self.lines.push_back(line);
                    if self.lines.len() > TAIL_LINES {
                        self.lines.pop_front();
                    }
                }
            } else if self.partial.len() < MAX_LINE {
                self.partial.push(b);
            }
        }
        complete
    }

    fn tail(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lines.iter().cloned().collect();
        if !self.partial.is_empty() {
            out.push(String::from_utf8_lossy(&self.partial).into_owned());
        }
        if out.len() > TAIL_LINES {
            out.drain(..out.len() - TAIL_LINES);
        }
        out
    }
}

#[derive(Default)]
struct VertexState {
    name: String,
    started: bool,
    /// Reported as CACHED (a step taken from an imported cache may first complete
    /// uncached while its layers are fetched, and only then complete cached).
    cached: bool,
    error: String,
}

/// What the status stream told us, for error reports.
#[derive(Default)]
pub(crate) struct Progress {
    vertices: HashMap<String, VertexState>,
    order: Vec<String>,
    tails: HashMap<String, LogTail>,
    last_log_vertex: Option<String>,
}

/// The step that failed and its last lines of output.
#[derive(Debug, Clone, Default)]
pub(crate) struct FailureDetail {
    pub step: Option<String>,
    pub log_tail: Vec<String>,
}

impl Progress {
    pub(crate) fn apply(&mut self, resp: StatusResponse, log: &dyn Logger) {
        for v in resp.vertexes {
            let st = self.vertices.entry(v.digest.clone()).or_insert_with(|| {
                self.order.push(v.digest.clone());
                VertexState::default()
            });
            if !v.name.is_empty() {
                st.name = v.name.clone();
            }
            if v.started.is_some() && !st.started {
                st.started = true;
                if !v.cached {
                    log.status(&st.name);
                }
            }
            if v.completed.is_some() && v.cached && !st.cached {
                st.cached = true;
                log.status(&format!("CACHED {}", st.name));
            }
            if !v.error.is_empty() && st.error.is_empty() {
                st.error = v.error.clone();
                log.log(
                    Level::Debug,
                    &format!("step failed: {}: {}", st.name, v.error),
                );
            }
        }
        for l in resp.logs {
            let lines = self.tails.entry(l.vertex.clone()).or_default().push(&l.msg);
            self.last_log_vertex = Some(l.vertex.clone());
            if !lines.is_empty() {
                let name = self
                    .vertices
                    .get(&l.vertex)
                    .map(|v| short_name(&v.name))
                    .unwrap_or_default();
                for line in lines {
                    log.status(&format!("{name} {line}"));
                }
            }
        }
        for w in resp.warnings {
            let mut msg = String::from_utf8_lossy(&w.short).into_owned();
            for d in &w.detail {
                let d = String::from_utf8_lossy(d);
                if !d.trim().is_empty() {
                    msg.push_str("\n  ");
                    msg.push_str(d.trim());
                }
            }
            if !w.url.is_empty() {
                msg.push_str(&format!("\n  see {}", w.url));
            }
            log.warn(&msg);
        }
    }

    /// The failed step (the last vertex with an error, else the last one that
    /// printed something) and its output tail.
    pub(crate) fn failure(&self) -> FailureDetail {
        let failed = self
            .order
            .iter()
            .rev()
            .find(|d| {
                self.vertices
                    .get(*d)
                    .is_some_and(|v| !v.error.is_empty() && !v.error.contains("context canceled"))
            })
            .or_else(|| {
                self.order
                    .iter()
                    .rev()
                    .find(|d| self.vertices.get(*d).is_some_and(|v| !v.error.is_empty()))
            })
            .cloned()
            .or_else(|| self.last_log_vertex.clone());
        match failed {
            None => FailureDetail::default(),
            Some(d) => FailureDetail {
                step: self.vertices.get(&d).map(|v| v.name.clone()),
                log_tail: self.tails.get(&d).map(LogTail::tail).unwrap_or_default(),
            },
        }
    }
}

/// "[linux/arm64 2/3] RUN make" -> "[linux/arm64 2/3]"
fn short_name(name: &str) -> String {
    if name.starts_with('[') {
        if let Some(end) = name.find(']') {
            return name[..=end].to_string();
        }
    }
    let mut s: String = name.chars().take(40).collect();
    if s.len() < name.len() {
        s.push('…');
    }
    s
}

/// Follows the status stream of `build_ref` until it ends.
pub(crate) async fn follow(
    mut control: Control,
    build_ref: String,
    log: Arc<dyn Logger>,
    state: Arc<std::sync::Mutex<Progress>>,
) {
    let mut stream = match control.status(StatusRequest { r#ref: build_ref }).await {
        Ok(s) => s.into_inner(),
        Err(e) => {
            log.log(Level::Debug, &format!("build progress unavailable: {e}"));
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(resp)) => {
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                st.apply(resp, log.as_ref());
            }
            Ok(None) => return,
            Err(e) => {
                log.log(Level::Debug, &format!("build progress stream ended: {e}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_buildkit_proto::moby::buildkit::v1::{Vertex, VertexLog};

    struct Quiet;
    impl Logger for Quiet {
        fn log(&self, _: Level, _: &str) {}
        fn status(&self, _: &str) {}
    }

    #[test]
    fn keeps_tail_of_failing_step() {
        let mut p = Progress::default();
        p.apply(
            StatusResponse {
                vertexes: vec![Vertex {
                    digest: "sha256:a".into(),
                    name: "[2/2] RUN boom".into(),
                    ..Default::default()
                }],
                logs: (0..30)
                    .map(|i| VertexLog {
                        vertex: "sha256:a".into(),
                        msg: format!("line {i}\n").into_bytes(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
            &Quiet,
        );
        p.apply(
            StatusResponse {
                vertexes: vec![Vertex {
                    digest: "sha256:a".into(),
                    name: "[2/2] RUN boom".into(),
                    error: "exit code: 3".into(),
                    ..Default::default()
                }],
                logs: vec![VertexLog {
                    vertex: "sha256:a".into(),
                    msg: b"no newline".to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            &Quiet,
        );
        let f = p.failure();
        assert_eq!(f.step.as_deref(), Some("[2/2] RUN boom"));
        assert_eq!(f.log_tail.len(), TAIL_LINES);
        assert_eq!(f.log_tail.last().unwrap(), "no newline");
        assert_eq!(f.log_tail[0], "line 11");
    }

    struct Record(std::sync::Mutex<Vec<String>>);
    impl Logger for Record {
        fn log(&self, _: Level, _: &str) {}
        fn status(&self, m: &str) {
            self.0.lock().unwrap().push(m.to_owned());
        }
    }

    #[test]
    fn a_step_from_an_imported_cache_is_cached_once_its_layers_are_fetched() {
        // As BuildKit reports a step whose result comes from a local cache: started cached,
        // completed uncached while its layers are fetched, then completed cached.
        let mut p = Progress::default();
        let log = Record(Default::default());
        let ts = Some(bollard_buildkit_proto::google::protobuf::Timestamp::default());
        for (cached, completed) in [(true, false), (false, false), (false, true), (true, true)] {
            p.apply(
                StatusResponse {
                    vertexes: vec![Vertex {
                        digest: "sha256:a".into(),
                        name: "[2/2] RUN x".into(),
                        cached,
                        started: ts,
                        completed: if completed { ts } else { None },
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                &log,
            );
        }
        assert_eq!(*log.0.lock().unwrap(), ["CACHED [2/2] RUN x"]);
    }
}
