//! Scheduled backups and their retention, a step of the store's round.
//!
//! With `spec.backup.schedule`, each due time (UTC) gets one ToyStoreBackup named
//! `<store>-<yyyymmddhhmm>`, labelled with the store and `toystore.dev/scheduled: "true"`; the
//! backup controller ([`crate::backup`]) runs it. The due time is recorded in the store's
//! `status.lastScheduleTime`, so each is served once. Due times missed while the operator was
//! down are caught up with a single backup, for the latest of them (as a CronJob does), and a
//! store never backs up a time before its creation. The store's round runs every few seconds
//! (`report::requeue`), so a due time is served within seconds.
//!
//! The backups are not owned by the store: the record of a backup, and the URL a new store
//! restores from, survive `kubectl delete toystore`.
//!
//! With `spec.backup.retention.keep` N, the completed scheduled backups beyond the newest N are
//! deleted (the scheduled Jobs, which write to `<destination>/<store>/scheduled`, delete the
//! artifacts there beyond the newest N with `--keep N`), and so are the failed scheduled ones
//! beyond the newest N, so that a store failing every night does not pile them up. A backup
//! created by hand (its artifact in `<destination>/<store>`) is never deleted.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::Api;

use super::memory::delete_once;
use super::report::announce;
use super::{Context, Error, create_if_absent};
use crate::build::{SCHEDULED_LABEL, STORE_LABEL};
use crate::crd::{BackupPhase, ToyStore, ToyStoreBackup, ToyStoreBackupSpec};
use crate::cron::Schedule;
use crate::status::Scheduled;
use crate::validate::ValidStore;

/// What the schedule step did.
pub(super) struct Round {
    /// The backup it created, with its due time.
    pub created: Option<Scheduled>,
}

/// Creates the backup of the latest due time not served yet, and deletes the scheduled
/// backups beyond the retention.
pub(super) async fn step(
    store: &ToyStore,
    valid: &ValidStore,
    ctx: &Context,
    now: Timestamp,
) -> Result<Round, Error> {
    let mut round = Round { created: None };
    let Some(settings) = &valid.backup else {
        return Ok(round);
    };
    if let Some(keep) = settings.keep {
        expire(store, valid, ctx, keep as usize).await?;
    }
    let Some(schedule) = &settings.schedule else {
        return Ok(round);
    };
    let recorded = store
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0);
    let created = store.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if let Some(time) = due(schedule, created, recorded, now) {
        let name = backup_name(&valid.name, time);
        let backups: Api<ToyStoreBackup> = Api::namespaced(ctx.client.clone(), &valid.namespace);
        // Not created: made by a round whose status had not reached the cache yet.
        if create_if_absent(&backups, &scheduled(valid, &name)).await? {
            let note = format!("created ToyStoreBackup {name} for the schedule's {time}");
            announce(ctx, store, "BackupScheduled", "Schedule", &note).await;
        }
        round.created = Some(Scheduled {
            time: Time(time),
            backup: name,
        });
    }
    Ok(round)
}

/// The due time a backup is to be created for now: the latest at or before `now`, if it is
/// after both the store's creation and the last one served (`None`: nothing is due).
pub(crate) fn due(
    schedule: &Schedule,
    created: Option<Timestamp>,
    served: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let since = created.max(served).unwrap_or(now);
    schedule
        .latest_at_or_before(now)
        .filter(|latest| *latest > since)
}

/// `<store>-<yyyymmddhhmm>` of a due time (UTC).
pub(crate) fn backup_name(store: &str, time: Timestamp) -> String {
    format!("{store}-{}", time.strftime("%Y%m%d%H%M"))
}

/// The scheduled ToyStoreBackup `name` of `store`: not owned by the store, so that it
/// outlives it.
fn scheduled(store: &ValidStore, name: &str) -> ToyStoreBackup {
    ToyStoreBackup {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(store.namespace.clone()),
            labels: Some(
                [
                    (STORE_LABEL.to_string(), store.name.clone()),
                    (SCHEDULED_LABEL.to_string(), "true".to_string()),
                ]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: ToyStoreBackupSpec {
            store: store.name.clone(),
        },
        status: None,
    }
}

/// Deletes the scheduled backups of `store` beyond the newest `keep` completed ones (and the
/// failed ones beyond the newest `keep` failed ones).
async fn expire(
    store: &ToyStore,
    valid: &ValidStore,
    ctx: &Context,
    keep: usize,
) -> Result<(), Error> {
    let mine = ctx.cache.backups.state_filter(|b| {
        b.namespace().as_deref() == Some(valid.namespace.as_str())
            && b.labels().get(STORE_LABEL) == Some(&valid.name)
            && b.labels().get(SCHEDULED_LABEL).map(String::as_str) == Some("true")
    });
    for backup in expired(&mine, keep) {
        if ctx.memory.is_deleting(&backup.metadata) {
            continue;
        }
        delete_once(ctx, &valid.namespace, backup.as_ref()).await?;
        let note = format!(
            "deleted ToyStoreBackup {} (the retention keeps the newest {keep})",
            backup.name_any()
        );
        announce(ctx, store, "BackupExpired", "Retention", &note).await;
    }
    Ok(())
}

/// Of `backups`, the completed ones beyond the newest `keep` completed, then the failed ones
/// beyond the newest `keep` failed; newest by creation, then name (which carries the due time).
pub(crate) fn expired(backups: &[Arc<ToyStoreBackup>], keep: usize) -> Vec<Arc<ToyStoreBackup>> {
    let mut out = Vec::new();
    for phase in [BackupPhase::Completed, BackupPhase::Failed] {
        let mut of_phase: Vec<&Arc<ToyStoreBackup>> = backups
            .iter()
            .filter(|b| b.status.as_ref().and_then(|s| s.phase) == Some(phase))
            .collect();
        of_phase.sort_by(|a, b| {
            let key = |b: &ToyStoreBackup| (b.metadata.creation_timestamp.clone(), b.name_any());
            key(b).cmp(&key(a))
        });
        out.extend(of_phase.into_iter().skip(keep).cloned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ToyStoreBackupStatus;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_due_time_is_served_once_and_missed_ones_once_in_all() {
        let daily = Schedule::parse("0 3 * * *").unwrap();
        let created = Some(at("2025-03-01T12:00:00Z"));
        // Before the first due time after creation: nothing.
        assert_eq!(due(&daily, created, None, at("2025-03-02T02:59:00Z")), None);
        // The first due time.
        let first = at("2025-03-02T03:00:00Z");
        assert_eq!(
            due(&daily, created, None, at("2025-03-02T03:00:30Z")),
            Some(first)
        );
        // Served: not again, until the next one.
        assert_eq!(
            due(&daily, created, Some(first), at("2025-03-02T23:00:00Z")),
            None
        );
        // The operator was down for three due times: one backup, for the latest.
        assert_eq!(
            due(&daily, created, Some(first), at("2025-03-05T10:00:00Z")),
            Some(at("2025-03-05T03:00:00Z"))
        );
        // A store created after today's due time waits for tomorrow's.
        assert_eq!(
            due(
                &daily,
                Some(at("2025-03-05T04:00:00Z")),
                None,
                at("2025-03-05T10:00:00Z")
            ),
            None
        );
        // A store without a creation time (never one read from the API) starts now.
        assert_eq!(due(&daily, None, None, at("2025-03-05T10:00:00Z")), None);
    }

    #[test]
    fn backup_names_carry_the_due_minute() {
        assert_eq!(
            backup_name("shop", at("2025-03-05T03:00:00Z")),
            "shop-202503050300"
        );
    }

    fn backup(name: &str, phase: Option<BackupPhase>, created: &str) -> Arc<ToyStoreBackup> {
        let mut b = scheduled_for_test(name);
        b.metadata.creation_timestamp = Some(Time(at(created)));
        b.status = phase.map(|phase| ToyStoreBackupStatus {
            phase: Some(phase),
            ..ToyStoreBackupStatus::default()
        });
        Arc::new(b)
    }

    fn scheduled_for_test(name: &str) -> ToyStoreBackup {
        ToyStoreBackup::new(
            name,
            ToyStoreBackupSpec {
                store: "shop".into(),
            },
        )
    }

    #[test]
    fn retention_keeps_the_newest_completed_and_failed_and_never_a_running_one() {
        use BackupPhase::*;
        let backups = vec![
            backup("shop-1", Some(Completed), "2025-03-01T03:00:00Z"),
            backup("shop-2", Some(Failed), "2025-03-02T03:00:00Z"),
            backup("shop-3", Some(Completed), "2025-03-03T03:00:00Z"),
            backup("shop-4", Some(Completed), "2025-03-04T03:00:00Z"),
            backup("shop-5", Some(Failed), "2025-03-05T03:00:00Z"),
            backup("shop-6", Some(Running), "2025-03-06T03:00:00Z"),
            backup("shop-7", None, "2025-03-07T03:00:00Z"),
        ];
        let names = |keep| -> Vec<String> {
            expired(&backups, keep)
                .iter()
                .map(|b| b.name_any())
                .collect()
        };
        assert_eq!(names(2), ["shop-1"]);
        assert_eq!(names(1), ["shop-3", "shop-1", "shop-2"]);
        assert_eq!(names(5), Vec::<String>::new());
    }
}
