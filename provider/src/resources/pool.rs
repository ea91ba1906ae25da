//! Pools of build nodes. Every `builders` endpoint listing a platform may build it: the
//! endpoints of one entry (`endpoints`) and of every entry listing the same platform. The
//! platforms whose candidate endpoints are the same set form one pool, built in one solve on
//! one node of it. Which node: rendezvous (highest-random-weight) hashing of a placement key
//! (the resource's URN) over the pool's endpoints, so the same resource reaches the same
//! warm node on every rebuild, and adding or removing a node moves only the resources whose
//! first choice it is. The next nodes in that order are the fall-backs.
//!
//! A per-endpoint limit of solves at once (`maxParallelSolves`) is a semaphore shared by
//! every resource the provider process builds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::endpoint::{entry_endpoints, Node};
use crate::config::ProviderConfig;
use crate::log::Logger;

/// One endpoint of a `builders` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// Index of the entry in `builders`.
    pub entry: usize,
    /// Index of the endpoint in the entry (0 for `endpoint`).
    pub index: usize,
    /// How messages name it: `builders[0]` (an entry with one `endpoint`) or
    /// `builders[0].endpoints[1]`.
    pub label: String,
    /// The endpoint setting as configured (what the hash and the limit are keyed by).
    pub setting: String,
    /// The entry's `maxParallelSolves`.
    pub limit: Option<u32>,
}

/// The pools of a configuration, and which pool builds each (normalized) platform.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pools {
    pools: Vec<Vec<Member>>,
    by_platform: BTreeMap<String, usize>,
}

impl Pools {
    /// The pools, in the order their first platform appears in `builders` (with no shared
    /// platform and one endpoint per entry, pool `i` is `builders[i]`).
    pub fn new(config: &ProviderConfig) -> Self {
        let mut members: BTreeMap<String, Vec<Member>> = BTreeMap::new();
        let mut order: Vec<String> = Vec::new();
        for (i, n) in config.builders.iter().enumerate() {
            let endpoints = entry_endpoints(i, n);
            let single = n.endpoint.is_some() && n.endpoints.is_empty();
            for p in &n.platforms {
                let Ok(p) = crate::platform::normalize(p) else {
                    continue;
                };
                let list = members.entry(p.clone()).or_insert_with(|| {
                    order.push(p.clone());
                    Vec::new()
                });
                for (j, (_, setting)) in endpoints.iter().enumerate() {
                    if list.iter().any(|m| m.entry == i && m.index == j) {
                        continue;
                    }
                    list.push(Member {
                        entry: i,
                        index: j,
                        label: if single {
                            format!("builders[{i}]")
                        } else {
                            format!("builders[{i}].endpoints[{j}]")
                        },
                        setting: setting.trim().to_owned(),
                        limit: n.max_parallel_solves,
                    });
                }
            }
        }
        let mut pools: Vec<Vec<Member>> = Vec::new();
        let mut by_platform = BTreeMap::new();
        for p in order {
            let list = members.remove(&p).unwrap_or_default();
            let i = match pools.iter().position(|q| *q == list) {
                Some(i) => i,
                None => {
                    pools.push(list);
                    pools.len() - 1
                }
            };
            by_platform.insert(p, i);
        }
        Pools { pools, by_platform }
    }

    /// The pool that builds `platform` (normalized); `None`: the default node.
    pub fn node_for(&self, platform: &str) -> Node {
        self.by_platform.get(platform).copied()
    }

    pub fn members(&self, node: usize) -> &[Member] {
        self.pools.get(node).map(Vec::as_slice).unwrap_or_default()
    }

    /// The members of pool `node` in the order a build tries them for `key`.
    pub fn order(&self, node: usize, key: &str) -> Vec<Member> {
        rendezvous(self.members(node), key)
    }

    /// How progress names the pool: its one member, or the entries it draws from
    /// (`builders[0]`, `builders[0,2]`).
    pub fn label(&self, node: usize) -> String {
        match self.members(node) {
            [one] => one.label.clone(),
            many => {
                let mut entries: Vec<usize> = many.iter().map(|m| m.entry).collect();
                entries.dedup();
                let list: Vec<String> = entries.iter().map(usize::to_string).collect();
                format!("builders[{}]", list.join(","))
            }
        }
    }
}

/// `members` ordered by their rendezvous weight for `key`, highest first.
pub(crate) fn rendezvous(members: &[Member], key: &str) -> Vec<Member> {
    let mut weighted: Vec<(u64, Member)> = members
        .iter()
        .map(|m| (weight(key, &m.setting), m.clone()))
        .collect();
    weighted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.label.cmp(&b.1.label)));
    weighted.into_iter().map(|(_, m)| m).collect()
}

fn weight(key: &str, endpoint: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0u8]);
    h.update(endpoint.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().unwrap_or_default())
}

/// One semaphore per endpoint and limit, for the life of the process.
type Slots = Mutex<HashMap<(String, u32), Arc<Semaphore>>>;

fn slots() -> &'static Slots {
    static SLOTS: OnceLock<Slots> = OnceLock::new();
    SLOTS.get_or_init(Mutex::default)
}

/// A slot for one solve on `member` (none needed without a limit). When every slot is
/// taken, says so in progress and waits; `None` when cancelled while waiting.
pub(crate) async fn slot(
    member: &Member,
    name: &str,
    log: &dyn Logger,
    cancel: &CancellationToken,
) -> Option<Option<OwnedSemaphorePermit>> {
    let Some(limit) = member.limit else {
        return Some(None);
    };
    let semaphore = {
        let mut map = slots().lock().unwrap_or_else(|p| p.into_inner());
        map.entry((member.setting.clone(), limit))
            .or_insert_with(|| Arc::new(Semaphore::new(limit as usize)))
            .clone()
    };
    if let Ok(p) = semaphore.clone().try_acquire_owned() {
        return Some(Some(p));
    }
    let waiting = format!("waiting for a slot on {name} (maxParallelSolves {limit})");
    log.info(&waiting);
    log.status(&waiting);
    tokio::select! {
        biased;
        _ = cancel.cancelled() => None,
        p = semaphore.acquire_owned() => p.ok().map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BuilderNodeConfig;

    fn entry(endpoints: &[&str], platforms: &[&str]) -> BuilderNodeConfig {
        BuilderNodeConfig {
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
            platforms: platforms.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn one_endpoint_per_entry_keeps_pool_i_as_builders_i() {
        let config = ProviderConfig {
            builders: vec![
                BuilderNodeConfig {
                    endpoint: Some("unix:///a".into()),
                    platforms: vec!["linux/amd64".into()],
                    ..Default::default()
                },
                BuilderNodeConfig {
                    endpoint: Some("unix:///b".into()),
                    platforms: vec!["linux/arm64".into()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let pools = Pools::new(&config);
        assert_eq!(pools.node_for("linux/amd64"), Some(0));
        assert_eq!(pools.node_for("linux/arm64"), Some(1));
        assert_eq!(pools.node_for("linux/s390x"), None);
        assert_eq!(pools.label(1), "builders[1]");
    }

    #[test]
    fn shared_platforms_make_one_pool_per_candidate_set() {
        let config = ProviderConfig {
            builders: vec![
                entry(&["unix:///a", "unix:///b"], &["linux/amd64", "linux/arm64"]),
                entry(&["unix:///c"], &["linux/amd64"]),
            ],
            ..Default::default()
        };
        let pools = Pools::new(&config);
        let amd = pools.node_for("linux/amd64").unwrap();
        let arm = pools.node_for("linux/arm64").unwrap();
        assert_ne!(amd, arm);
        assert_eq!(pools.members(amd).len(), 3);
        assert_eq!(pools.members(arm).len(), 2);
        assert_eq!(pools.label(amd), "builders[0,1]");
        assert_eq!(pools.members(arm)[1].label, "builders[0].endpoints[1]");
    }

    #[test]
    fn rendezvous_is_sticky_spreads_and_moves_only_the_removed_share() {
        let all: Vec<Member> = (0..4)
            .map(|j| Member {
                entry: 0,
                index: j,
                label: format!("builders[0].endpoints[{j}]"),
                setting: format!("tcp://buildkitd-{j}.buildkitd:1234"),
                limit: None,
            })
            .collect();
        let keys: Vec<String> = (0..400)
            .map(|i| format!("urn:pulumi:s::p::t::img{i}"))
            .collect();
        let first = |ms: &[Member], k: &str| rendezvous(ms, k)[0].setting.clone();
        let mut per_node: HashMap<String, usize> = HashMap::new();
        for k in &keys {
            assert_eq!(first(&all, k), first(&all, k));
            *per_node.entry(first(&all, k)).or_default() += 1;
        }
        assert_eq!(per_node.len(), 4);
        assert!(per_node.values().all(|&n| n > 50), "{per_node:?}");
        // Node 2 leaves: only its keys move, each to its own second choice.
        let without: Vec<Member> = all.iter().filter(|m| m.index != 2).cloned().collect();
        for k in &keys {
            let before = rendezvous(&all, k);
            let after = first(&without, k);
            if before[0].index == 2 {
                assert_eq!(after, before[1].setting);
            } else {
                assert_eq!(after, before[0].setting);
            }
        }
    }
}
