//! The hash-chained event log: every answer, login, finish and staff action, in order.
//!
//! There is one chain per exam session (`{package}/{session}`) and one for the TUK itself
//! (`_tuk`), so a session's bundle carries exactly its own chain. Each event is stored as the
//! exact bytes of its JSON body, which includes `prev`, the blake3 (hex) of the previous
//! event's bytes (64 zeros for the first). An event's hash is blake3 of its bytes, so anyone
//! can re-check a chain with `b3sum` and a JSON reader; changing, removing or reordering any
//! event breaks every later link.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::store::{Put, Table};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The chain of events that belong to no session (imports, user accounts, trust changes).
pub const TUK_CHAIN: &str = "_tuk";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub chain: String,
    pub seq: u64,
    pub at_ms: i64,
    /// What happened, e.g. `answer`, `login`, `finish`, `auto_submit`, `downtime_credit`.
    pub kind: String,
    /// Who did it: `participant:NUMBER`, `staff:NAME`, or `system`.
    pub actor: String,
    /// Details (never a password; answers carry the option ids chosen).
    pub data: serde_json::Value,
    pub prev: String,
}

/// Where a chain stands: the next sequence number and the hash to link to.
#[derive(Clone, Debug)]
pub struct Head {
    pub next_seq: u64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Head {
        Head {
            next_seq: 0,
            hash: GENESIS.to_string(),
        }
    }
}

pub fn event_key(chain: &str, seq: u64) -> String {
    crate::store::key2(chain, &format!("{seq:020}"))
}

/// Appends an event to a chain head, returning the put that stores it.
pub fn append(
    head: &mut Head,
    chain: &str,
    at_ms: i64,
    kind: &str,
    actor: &str,
    data: serde_json::Value,
) -> Put {
    let ev = Event {
        chain: chain.to_string(),
        seq: head.next_seq,
        at_ms,
        kind: kind.to_string(),
        actor: actor.to_string(),
        data,
        prev: head.hash.clone(),
    };
    let bytes = serde_json::to_vec(&ev).unwrap_or_default();
    head.hash = blake3::hash(&bytes).to_hex().to_string();
    head.next_seq += 1;
    Put::bytes(Table::Events, event_key(chain, ev.seq), bytes)
}

/// Checks a chain given as the stored bytes of its events in order. Returns the head hash.
pub fn verify_chain<'a>(chain: &str, events: impl IntoIterator<Item = &'a [u8]>) -> Result<String> {
    let mut prev = GENESIS.to_string();
    for (i, bytes) in events.into_iter().enumerate() {
        let ev: Event = serde_json::from_slice(bytes)
            .map_err(|_| anyhow::anyhow!("event {i} of chain {chain} is not valid JSON"))?;
        if ev.chain != chain || ev.seq != i as u64 {
            bail!(
                "event {i} of chain {chain} is out of place (seq {})",
                ev.seq
            );
        }
        if ev.prev != prev {
            bail!(
                "event {i} of chain {chain} does not link to the event before it: the log was changed"
            );
        }
        prev = blake3::hash(bytes).to_hex().to_string();
    }
    Ok(prev)
}

/// One chain as [`verify_store`] found it.
#[derive(Debug)]
pub struct ChainCheck {
    pub chain: String,
    pub events: usize,
    /// The head hash when every link holds, or what is wrong.
    pub result: Result<String>,
}

/// Re-checks every chain in the store from its first event (the whole log: this reads
/// and hashes every event, so it is a command, `tuk verify`, not part of start-up).
pub fn verify_store(store: &crate::store::Store) -> Result<Vec<ChainCheck>> {
    let mut out = Vec::new();
    for (chain, _) in store.chain_heads()? {
        let rows = store.scan_prefix(Table::Events, &format!("{chain}\u{1f}"))?;
        let result = verify_chain(&chain, rows.iter().map(|(_, v)| v.as_slice()));
        out.push(ChainCheck {
            chain,
            events: rows.len(),
            result,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_detects_changes() {
        let mut head = Head::default();
        let puts: Vec<Put> = (0..5)
            .map(|i| {
                append(
                    &mut head,
                    "s",
                    i,
                    "answer",
                    "system",
                    serde_json::json!({"i": i}),
                )
            })
            .collect();
        let bytes: Vec<Vec<u8>> = puts.iter().map(|p| p.value.clone().unwrap()).collect();
        assert_eq!(
            verify_chain("s", bytes.iter().map(|b| b.as_slice())).unwrap(),
            head.hash
        );
        let mut bad = bytes.clone();
        bad[2] = String::from_utf8(bad[2].clone())
            .unwrap()
            .replace("\"i\":2", "\"i\":9")
            .into_bytes();
        assert!(verify_chain("s", bad.iter().map(|b| b.as_slice())).is_err());
        let mut dropped = bytes.clone();
        dropped.remove(1);
        assert!(verify_chain("s", dropped.iter().map(|b| b.as_slice())).is_err());
    }
}
