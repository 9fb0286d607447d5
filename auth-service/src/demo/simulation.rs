//! The background task that publishes a simulated generation's events on schedule,
//! through the store, as a backend publishing through the stream service would.

use std::time::Duration;

use authstream_runtime::UnixTime;
use authstream_store::events::{self, GenerationStatus, HistoryLimits, ProgressEvent};
use authstream_store::{AppendOutcome, Store};
use authstream_web::ApiError;
use tokio::time::Instant;

use super::PUBLISH_ATTEMPTS;
use super::script::Step;

/// Everything the background task needs.
pub(super) struct Simulation {
    pub(super) store: Store,
    pub(super) generation_id: String,
    pub(super) steps: Vec<&'static Step>,
    pub(super) due: Vec<Duration>,
    pub(super) history: HistoryLimits,
    pub(super) lock: String,
}

impl Simulation {
    /// Appends `step`, due at `due` from the start, now.
    pub(super) async fn publish(
        &self,
        step: &Step,
        due: Duration,
    ) -> Result<AppendOutcome, ApiError> {
        let end = self.due.last().copied().unwrap_or_default();
        let now = UnixTime::now();
        let mut event = ProgressEvent::new(&self.generation_id, step.status, now.millis());
        event.stage = Some(step.stage.to_owned());
        event.progress = Some(step.progress);
        event.message = Some(step.message.to_owned());
        if !step.status.is_terminal() {
            let remaining = end.saturating_sub(due).as_secs_f64().ceil() as u64;
            event
                .extra
                .insert("estimated_time_remaining".to_owned(), remaining.into());
        }
        if let Some(file) = step.current_file {
            event.extra.insert("current_file".to_owned(), file.into());
        }
        let mut attempt = 1;
        loop {
            match events::publish(&self.store, &event, self.history, now).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) if attempt >= PUBLISH_ATTEMPTS => return Err(e.into()),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
        }
    }

    /// Publishes steps 1.. on schedule (step 0 went out with the request), then lets
    /// the generation be simulated by nobody else. When the store fails mid-way, the
    /// generation is ended with a `failed` event if the store takes it, so that no
    /// client waits for a `processing` generation that nothing feeds any more.
    pub(super) async fn run(self, started: Instant) {
        let mut last = self.steps.first().copied();
        for (step, due) in self.steps.iter().zip(&self.due).skip(1) {
            tokio::time::sleep_until(started + *due).await;
            match self.publish(step, *due).await {
                Ok(AppendOutcome::Appended { .. }) => last = Some(step),
                Ok(other) => {
                    tracing::info!(generation_id = %self.generation_id, outcome = ?other, "demo: simulation stopped early");
                    break;
                }
                Err(e) => {
                    tracing::warn!(generation_id = %self.generation_id, error = %e, "demo: simulation abandoned");
                    self.fail_after(last, *due).await;
                    break;
                }
            }
        }
        if let Err(e) = self.store.del(&self.lock).await {
            tracing::debug!(error = %e, "demo: cannot release the simulation lock");
        }
        tracing::info!(generation_id = %self.generation_id, "demo: simulation finished");
    }

    /// Best effort: a final `failed` event where the run stopped. If the store does not
    /// take it either, the generation stays `processing` (a new one can be simulated).
    async fn fail_after(&self, last: Option<&Step>, due: Duration) {
        let failed = Step {
            weight: 0,
            status: GenerationStatus::Failed,
            stage: last.map_or("initializing", |s| s.stage),
            progress: last.map_or(0.0, |s| s.progress),
            message: "Generation failed: the simulation could not publish its progress",
            current_file: None,
        };
        if let Err(e) = self.publish(&failed, due).await {
            tracing::warn!(generation_id = %self.generation_id, error = %e, "demo: cannot mark the abandoned simulation failed");
        }
    }
}
