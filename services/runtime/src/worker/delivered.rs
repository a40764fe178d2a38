//! Copies of a job that another copy already delivered.
//!
//! Delivery is at least once: a receiver that crashed after publishing, or a worker that
//! stopped before acknowledging, puts a second copy of a job on the queue. Both copies run, and
//! the first to reach the publisher delivers the study and applies retention, which deletes the
//! intermediates (volume, spine region, detection) the second copy still needs. The publisher
//! therefore leaves a marker per delivered job ([`spinescreen_proto::StudyKeys::delivered`]);
//! a later stage that finds its job's marker answers the job with the study's result instead
//! of failing on the missing inputs (dead-lettered) or rendering what is left of them.

use crate::storage::StudyStore;
use spinescreen_proto::{Job, StudyResult, StudyStatus, StudyUid};

/// The study and the status of its result when `job` has already been delivered by another
/// copy; `None` when it has not (or the study or its result cannot be read: the job then runs
/// as usual).
pub(super) async fn delivered_status(
    store: &StudyStore,
    job: &Job,
) -> Option<(StudyUid, StudyStatus)> {
    let uid = job.study_uid.as_ref()?;
    let keys = uid.keys();
    if !store.exists(&keys.delivered(&job.job_id)).await.ok()? {
        return None;
    }
    let bytes = store.get(&keys.result()).await.ok()?;
    let result: StudyResult = serde_json::from_slice(&bytes).ok()?;
    Some((uid.clone(), result.status))
}
