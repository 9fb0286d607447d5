//! What a simulated generation says, and when: a scripted code generation as a real
//! backend reports it, ending `completed` or `failed`.

use std::time::Duration;

use authstream_store::events::GenerationStatus;

/// How a simulated generation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Completed,
    Failed,
}

impl Outcome {
    /// The status of the last event (and the request's `outcome`, as written).
    pub(super) fn status(self) -> GenerationStatus {
        match self {
            Self::Completed => GenerationStatus::Completed,
            Self::Failed => GenerationStatus::Failed,
        }
    }
}

/// One scripted step: when it comes (a share of the whole duration, after the
/// previous one) and what it says.
pub(super) struct Step {
    pub(super) weight: u32,
    pub(super) status: GenerationStatus,
    pub(super) stage: &'static str,
    pub(super) progress: f64,
    pub(super) message: &'static str,
    pub(super) current_file: Option<&'static str>,
}

const fn step(
    weight: u32,
    stage: &'static str,
    progress: f64,
    message: &'static str,
    current_file: Option<&'static str>,
) -> Step {
    Step {
        weight,
        status: GenerationStatus::Processing,
        stage,
        progress,
        message,
        current_file,
    }
}

/// A code generation as a real backend reports it: stages, progress, messages, files.
#[rustfmt::skip]
const SCRIPT: [Step; 16] = [
    step(0, "initializing", 0.02, "Preparing workspace...", None),
    step(
        3,
        "requirements_analysis",
        0.08,
        "Analyzing requirements...",
        None,
    ),
    step(
        4,
        "requirements_analysis",
        0.14,
        "Identified 4 entities and 12 endpoints",
        None,
    ),
    step(5, "schema_extraction", 0.22, "Extracting schema...", None),
    step(
        5,
        "schema_extraction",
        0.30,
        "Resolving relations between entities...",
        None,
    ),
    step(
        4,
        "architecture_design",
        0.37,
        "Designing the service layout...",
        None,
    ),
    step(
        6,
        "code_generation",
        0.45,
        "Generating models...",
        Some("app/models/user.py"),
    ),
    step(
        7,
        "code_generation",
        0.53,
        "Generating API routes...",
        Some("app/api/routes/users.py"),
    ),
    step(
        7,
        "code_generation",
        0.61,
        "Generating services...",
        Some("app/services/auth.py"),
    ),
    step(
        5,
        "code_generation",
        0.68,
        "Generating database migrations...",
        Some("migrations/0001_initial.py"),
    ),
    step(
        6,
        "testing",
        0.75,
        "Writing tests...",
        Some("tests/test_users.py"),
    ),
    step(
        8,
        "testing",
        0.82,
        "Running the generated tests: 48 passed",
        None,
    ),
    step(
        5,
        "documentation",
        0.88,
        "Writing the README and API docs...",
        Some("README.md"),
    ),
    step(
        5,
        "packaging",
        0.94,
        "Packaging the project archive...",
        None,
    ),
    step(4, "finalizing", 0.98, "Running final checks...", None),
    Step {
        weight: 3,
        status: GenerationStatus::Completed,
        stage: "completed",
        progress: 1.0,
        message: "Generation completed: 37 files",
        current_file: None,
    },
];

/// Where a failing run stops: the generated tests fail.
const FAILS_AT: usize = 11;
const FAILURE: Step = Step {
    weight: 8,
    status: GenerationStatus::Failed,
    stage: "testing",
    progress: 0.82,
    message: "Generation failed: 3 of 48 generated tests failed",
    current_file: None,
};

pub(super) fn script(outcome: Outcome) -> Vec<&'static Step> {
    match outcome {
        Outcome::Completed => SCRIPT.iter().collect(),
        Outcome::Failed => SCRIPT
            .iter()
            .take(FAILS_AT)
            .chain(std::iter::once(&FAILURE))
            .collect(),
    }
}

/// When each step is due, from the start, so that the whole run takes `total`.
pub(super) fn schedule(steps: &[&Step], total: Duration) -> Vec<Duration> {
    let sum: u32 = steps.iter().map(|s| s.weight).sum::<u32>().max(1);
    let mut elapsed = 0;
    steps
        .iter()
        .map(|s| {
            elapsed += s.weight;
            total.mul_f64(f64::from(elapsed) / f64::from(sum))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_climbs_to_its_end() {
        for outcome in [Outcome::Completed, Outcome::Failed] {
            let steps = script(outcome);
            assert!((12..=20).contains(&steps.len()));
            assert!(steps.windows(2).all(|w| w[0].progress <= w[1].progress));
            let last = steps.last().map(|s| s.status);
            assert_eq!(last, Some(outcome.status()));
            assert!(
                steps
                    .iter()
                    .rev()
                    .skip(1)
                    .all(|s| s.status == GenerationStatus::Processing)
            );
        }
        assert_eq!(SCRIPT[SCRIPT.len() - 1].progress, 1.0);
    }

    #[test]
    fn the_schedule_spans_the_duration() {
        let steps = script(Outcome::Completed);
        let due = schedule(&steps, Duration::from_millis(8_000));
        assert_eq!(due.len(), steps.len());
        assert!(due.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(due.last().copied(), Some(Duration::from_millis(8_000)));
    }
}
