//! Per-member operation counters served at `/v2/stats/store`. Atomics, so that reads (which
//! take `&Store`) can count too. Write counters count applied operations, so they are rebuilt
//! by replay after a restart, as in etcd.

use std::sync::atomic::{AtomicU64, Ordering};

/// The counters, in etcd's JSON key order (`watchers` is appended by the store).
#[derive(Debug, Default)]
pub struct StoreStats {
    pub gets_success: AtomicU64,
    pub gets_fail: AtomicU64,
    pub sets_success: AtomicU64,
    pub sets_fail: AtomicU64,
    pub delete_success: AtomicU64,
    pub delete_fail: AtomicU64,
    pub update_success: AtomicU64,
    pub update_fail: AtomicU64,
    pub create_success: AtomicU64,
    pub create_fail: AtomicU64,
    pub compare_and_swap_success: AtomicU64,
    pub compare_and_swap_fail: AtomicU64,
    pub compare_and_delete_success: AtomicU64,
    pub compare_and_delete_fail: AtomicU64,
    pub expire_count: AtomicU64,
}

/// JSON names, in the order of [`StoreStats::values`].
pub const STAT_NAMES: [&str; 15] = [
    "getsSuccess",
    "getsFail",
    "setsSuccess",
    "setsFail",
    "deleteSuccess",
    "deleteFail",
    "updateSuccess",
    "updateFail",
    "createSuccess",
    "createFail",
    "compareAndSwapSuccess",
    "compareAndSwapFail",
    "compareAndDeleteSuccess",
    "compareAndDeleteFail",
    "expireCount",
];

impl StoreStats {
    fn counters(&self) -> [&AtomicU64; 15] {
        [
            &self.gets_success,
            &self.gets_fail,
            &self.sets_success,
            &self.sets_fail,
            &self.delete_success,
            &self.delete_fail,
            &self.update_success,
            &self.update_fail,
            &self.create_success,
            &self.create_fail,
            &self.compare_and_swap_success,
            &self.compare_and_swap_fail,
            &self.compare_and_delete_success,
            &self.compare_and_delete_fail,
            &self.expire_count,
        ]
    }

    /// Current values, in [`STAT_NAMES`] order.
    pub fn values(&self) -> [u64; 15] {
        self.counters()
            .map(|counter| counter.load(Ordering::Relaxed))
    }

    /// Counters holding `values` (in [`STAT_NAMES`] order).
    pub fn from_values(values: [u64; 15]) -> StoreStats {
        let stats = StoreStats::default();
        for (counter, value) in stats.counters().into_iter().zip(values) {
            counter.store(value, Ordering::Relaxed);
        }
        stats
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Bumps `success` or `fail`.
    pub fn outcome(success: &AtomicU64, fail: &AtomicU64, ok: bool) {
        StoreStats::bump(if ok { success } else { fail });
    }

    /// `{"getsSuccess":N,...,"expireCount":N,"watchers":W}` without a newline.
    pub fn to_json(&self, watchers: usize) -> String {
        let mut out = String::from("{");
        for (name, value) in STAT_NAMES.iter().zip(self.values()) {
            out.push_str(&format!("\"{name}\":{value},"));
        }
        out.push_str(&format!("\"watchers\":{watchers}}}"));
        out
    }
}

impl Clone for StoreStats {
    fn clone(&self) -> Self {
        StoreStats::from_values(self.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_etcds_key_order() {
        let stats = StoreStats::default();
        StoreStats::bump(&stats.gets_fail);
        StoreStats::bump(&stats.expire_count);
        StoreStats::bump(&stats.expire_count);
        assert_eq!(
            stats.to_json(3),
            "{\"getsSuccess\":0,\"getsFail\":1,\"setsSuccess\":0,\"setsFail\":0,\
             \"deleteSuccess\":0,\"deleteFail\":0,\"updateSuccess\":0,\"updateFail\":0,\
             \"createSuccess\":0,\"createFail\":0,\"compareAndSwapSuccess\":0,\
             \"compareAndSwapFail\":0,\"compareAndDeleteSuccess\":0,\"compareAndDeleteFail\":0,\
             \"expireCount\":2,\"watchers\":3}"
        );
        let copy = stats.clone();
        assert_eq!(copy.values(), stats.values());
    }
}
