//! Kubernetes Events that read as what happened.
//!
//! kube-runtime's `Recorder` folds repeats into one Event with a growing `series.count`, keyed by
//! (type, reason, action, reporter, regarding, related), but not by the note: a second
//! `MembershipChanged` to other voters became "×2" of the first note. [`Events`] keeps the same
//! series mechanism (`events.k8s.io/v1`: create once, then patch the series) with the note in
//! the key, so a repeat of the same condition counts up and a different one is its own Event
//! ([`Events::publish`]). A change that happened is never a repeat, even when its text is that
//! of an earlier change (voters back to `[0, 1, 2]` after a grow and a shrink): each is an
//! Event of its own ([`Events::announce`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{EventType, Reporter};
use kube::{Client, ResourceExt};

/// How long a published Event may still be counted up, as kube-runtime's recorder does.
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);
/// The longest Event note the API server takes is 1 kB: every note is cut to this many
/// characters ([`shorten`]).
pub const NOTE_LIMIT: usize = 1000;

/// What makes two publications the same occurrence.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    regarding: (Option<String>, Option<String>, Option<String>),
    warning: bool,
    reason: String,
    action: String,
    note: String,
}

/// Publishes Events about objects, counting exact repeats as a series.
#[derive(Clone)]
pub struct Events {
    client: Client,
    reporter: Reporter,
    published: Arc<Mutex<HashMap<Key, Event>>>,
}

impl Events {
    /// A publisher reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            published: Arc::default(),
        }
    }

    /// Publishes one occurrence about `regarding`: a new Event, or the next count of the
    /// series of an identical one published in the last six minutes. The note is cut to
    /// [`NOTE_LIMIT`].
    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key {
            regarding: (
                regarding.namespace.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ),
            warning: type_ == EventType::Warning,
            reason: reason.into(),
            action: action.into(),
            note: shorten(note, NOTE_LIMIT),
        };
        let previous = {
            let mut published = self.published.lock().expect("events lock");
            published.retain(|_, e| last_seen(e) + SERIES_TTL > now);
            published.get(&key).cloned()
        };
        let ns = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        let event = match previous {
            Some(mut event) => {
                event.series = Some(EventSeries {
                    count: event.series.as_ref().map_or(2, |s| s.count + 1),
                    last_observed_time: MicroTime(now),
                });
                api.patch(
                    &event.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&event),
                )
                .await?;
                event
            }
            None => {
                let event = self.event(regarding, &key, now);
                api.create(&PostParams::default(), &event).await?;
                event
            }
        };
        self.published
            .lock()
            .expect("events lock")
            .insert(key, event);
        Ok(())
    }

    /// Publishes a change that happened: always a new Event, never counted into an earlier one.
    /// The note is cut to [`NOTE_LIMIT`].
    pub async fn announce(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), kube::Error> {
        let key = Key {
            regarding: (None, None, None),
            warning: type_ == EventType::Warning,
            reason: reason.into(),
            action: action.into(),
            note: shorten(note, NOTE_LIMIT),
        };
        let ns = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), ns);
        api.create(
            &PostParams::default(),
            &self.event(regarding, &key, Timestamp::now()),
        )
        .await?;
        Ok(())
    }

    fn event(&self, regarding: &ObjectReference, key: &Key, now: Timestamp) -> Event {
        let name = regarding
            .name
            .as_deref()
            .unwrap_or(&self.reporter.controller);
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", now.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if key.warning { "Warning" } else { "Normal" }.into()),
            reason: Some(key.reason.clone()),
            action: Some(key.action.clone()),
            note: Some(key.note.clone()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..Event::default()
        }
    }
}

/// `text` cut to `limit` characters at most, for an Event's note (the API server refuses a
/// note over 1 kB).
pub fn shorten(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let head: String = text.chars().take(limit.saturating_sub(3)).collect();
    format!("{head}...")
}

fn last_seen(event: &Event) -> Timestamp {
    event
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_notes_are_cut() {
        let long = "x".repeat(5000);
        assert_eq!(shorten(&long, NOTE_LIMIT).chars().count(), NOTE_LIMIT);
        assert!(shorten(&long, NOTE_LIMIT).ends_with("..."));
        assert_eq!(shorten("short", NOTE_LIMIT), "short");
    }
}
