//! Operating a running test cluster: asking its nodes, moving slots, killing and
//! signalling nodes, waiting for it to heal.

use super::*;

impl RedisCluster {
    /// `redis-cli` against one node; `None` when it does not answer.
    pub fn cli(&self, port: u16, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(self.cli_tls())
            .args([
                "-p",
                &port.to_string(),
                "-a",
                CLUSTER_PASSWORD,
                "--no-auth-warning",
            ])
            .args(args)
            .output()
            .ok()?;
        (out.status.success() && !out.stdout.is_empty())
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `redis-cli`'s TLS arguments, for a TLS cluster.
    pub(super) fn cli_tls(&self) -> Vec<String> {
        match self.tls {
            true => test_tls().cli_args(),
            false => Vec::new(),
        }
    }

    /// `CONFIG SET <name> <value>` on every node that runs, e.g.
    /// `cluster-require-full-coverage no`, with which the other masters go on serving
    /// their slots while one is replaced (by default the whole cluster answers
    /// `CLUSTERDOWN` until the replica takes over).
    pub fn config_set(&self, name: &str, value: &str) {
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            let reply = self.cli(node.port, &["CONFIG", "SET", name, value]);
            assert_eq!(
                reply.as_deref().map(str::trim),
                Some("OK"),
                "{name} on {}",
                node.port
            );
        }
    }

    /// The id of the node at `port`.
    pub fn node_id(&self, port: u16) -> String {
        self.cli(port, &["CLUSTER", "MYID"])
            .unwrap()
            .trim()
            .to_owned()
    }

    /// The ports of the masters that are up.
    pub fn masters(&self) -> Vec<u16> {
        let any = self.nodes.iter().find(|n| n.is_running()).unwrap().port;
        let nodes = self.cli(any, &["CLUSTER", "NODES"]).unwrap();
        nodes
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.len() >= 8 && fields[2].contains("master") && !fields[2].contains("fail"))
                    .then(|| fields[1].split(['@', ':']).nth(1)?.parse().ok())
                    .flatten()
            })
            .collect()
    }

    /// Moves `slot` with its keys from its master to the master at `to`, the way an
    /// operator resharding does: `SETSLOT IMPORTING`/`MIGRATING`, `MIGRATE` of every
    /// key, then `SETSLOT NODE` on every master.
    pub fn move_slot(&self, slot: u16, to: u16) {
        let slot_s = slot.to_string();
        let from = self
            .masters()
            .into_iter()
            .find(|port| self.serves(*port, slot))
            .unwrap_or_else(|| panic!("no master serves slot {slot}"));
        assert_ne!(from, to, "slot {slot} is already on {to}");
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        let ok = |port: u16, args: &[&str]| {
            let out = self.cli(port, args).unwrap_or_default();
            assert!(out.trim() == "OK", "{args:?} on {port}: {out}");
        };
        ok(to, &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &from_id]);
        ok(from, &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &to_id]);
        loop {
            let keys = self
                .cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"])
                .unwrap_or_default();
            let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            let port = to.to_string();
            let mut args = vec![
                "MIGRATE",
                "127.0.0.1",
                &port,
                "",
                "0",
                "5000",
                "AUTH",
                CLUSTER_PASSWORD,
                "KEYS",
            ];
            args.extend(keys);
            ok(from, &args);
        }
        for port in self.masters() {
            ok(port, &["CLUSTER", "SETSLOT", &slot_s, "NODE", &to_id]);
        }
    }

    /// Whether the node at `port` serves `slot` by its own view.
    fn serves(&self, port: u16, slot: u16) -> bool {
        let nodes = self.cli(port, &["CLUSTER", "NODES"]).unwrap_or_default();
        nodes
            .lines()
            .filter(|l| l.contains("myself"))
            .flat_map(|l| l.split_whitespace().skip(8).collect::<Vec<_>>())
            .any(|range| {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
            })
    }

    /// `REDIS_CLUSTER_NODES` for this cluster: two seeds, with the password.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .take(2)
            .map(|n| {
                let scheme = if self.tls { "rediss" } else { "redis" };
                format!("{scheme}://:{CLUSTER_PASSWORD}@127.0.0.1:{}", n.port)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the master serving `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        self.try_master_of(key)
            .unwrap_or_else(|| panic!("no master serves the slot of {key}"))
    }

    /// The port of the master serving `key`'s slot by `CLUSTER NODES` of a live node,
    /// `None` while none does (a failed master not yet replaced) or no node answers.
    pub fn try_master_of(&self, key: &str) -> Option<u16> {
        let any = self.nodes.iter().find(|n| n.is_running())?.port;
        let slot: u16 = self
            .cli(any, &["CLUSTER", "KEYSLOT", key])?
            .trim()
            .parse()
            .ok()?;
        let nodes = self.cli(any, &["CLUSTER", "NODES"])?;
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                continue;
            }
            let Some(port) = fields[1]
                .split(['@', ':'])
                .nth(1)
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            for range in &fields[8..] {
                let (lo, hi) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(lo), Ok(hi)) = (lo.parse::<u16>(), hi.parse::<u16>())
                    && (lo..=hi).contains(&slot)
                {
                    return Some(port);
                }
            }
        }
        None
    }

    /// SIGKILLs the node on `port`.
    pub fn kill(&self, port: u16) {
        let node = self.nodes.iter().find(|n| n.port == port).unwrap();
        if let Some(mut child) = node.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the node on `port` without closing its connections (SIGSTOP), or lets it
    /// go on (SIGCONT): a replica that falls behind, a hung host.
    pub fn signal(&self, port: u16, signal: &str) {
        let node = self.nodes.iter().find(|n| n.port == port).unwrap();
        if let Some(child) = node.child.lock().unwrap().as_ref() {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success(), "kill {signal}");
        }
    }

    /// The ports of the replicas of the master on `master_port`, each as it sees
    /// itself (gossip may not have told the master yet).
    pub fn replicas_of(&self, master_port: u16) -> Vec<u16> {
        let myself = |port: u16| -> Option<Vec<String>> {
            let nodes = self.cli(port, &["CLUSTER", "NODES"])?;
            let line = nodes.lines().find(|l| l.contains("myself"))?;
            Some(line.split_whitespace().map(str::to_owned).collect())
        };
        let id = myself(master_port).unwrap()[0].clone();
        self.nodes
            .iter()
            .filter(|n| n.is_running() && n.port != master_port)
            .filter(|n| myself(n.port).is_some_and(|f| f.get(3) == Some(&id)))
            .map(|n| n.port)
            .collect()
    }

    /// Waits until every live node sees the cluster as whole again (a replica
    /// promoted for every killed master).
    pub fn wait_healthy(&self) {
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            self.wait(
                node.port,
                |info| info.contains("cluster_state:ok"),
                "cluster did not heal",
            );
        }
    }
}
