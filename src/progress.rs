//! The training loop's progress display: an `indicatif` bar on a terminal (cargo feature
//! `progress`, on by default), else plain lines.
//!
//! The loop talks to [`Progress`] only, so that a build without the feature compiles no
//! terminal code and behaves as a run whose bar is hidden: it prints the status line every
//! `log_every` steps and the events (growth, measurements) as they happen.

/// What the bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    /// Steps out of a step limit.
    Steps { total: u64 },
    /// Seconds out of a time limit (only the clock bounds the run); steps shown alongside.
    Seconds { limit: u64 },
}

/// A progress bar, or its plain-text stand-in.
pub(crate) struct Progress {
    measure: Measure,
    message: String,
    #[cfg(feature = "progress")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A display counting `measure`, at `step` already done; `visible` asks for the bar
    /// (shown only on a terminal, and only with the `progress` feature).
    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    pub(crate) fn new(measure: Measure, step: u64, visible: bool) -> Self {
        #[cfg(feature = "progress")]
        let bar = {
            use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
            let (bar, template) = match measure {
                Measure::Steps { total } => (
                    ProgressBar::new(total),
                    "{spinner} {pos}/{len} steps [{elapsed_precise}<{eta_precise}] {wide_bar} \n  {msg}",
                ),
                Measure::Seconds { limit } => (
                    ProgressBar::new(limit.max(1)),
                    "{spinner} step {prefix} [{elapsed_precise} of the time limit] {wide_bar} \n  {msg}",
                ),
            };
            if !visible {
                bar.set_draw_target(ProgressDrawTarget::hidden());
            }
            bar.set_style(
                ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        };
        let progress = Progress {
            measure,
            message: String::new(),
            #[cfg(feature = "progress")]
            bar,
        };
        progress.update(step, 0);
        progress
    }

    /// Moves to `step`, `seconds` into the run, with the status line `message`.
    pub(crate) fn advance(&mut self, step: u64, seconds: u64, message: String) {
        self.message = message;
        self.update(step, seconds);
        #[cfg(feature = "progress")]
        self.bar.set_message(self.message.clone());
    }

    #[cfg_attr(not(feature = "progress"), allow(unused_variables))]
    fn update(&self, step: u64, seconds: u64) {
        #[cfg(feature = "progress")]
        match self.measure {
            Measure::Steps { .. } => self.bar.set_position(step),
            Measure::Seconds { .. } => {
                self.bar.set_position(seconds);
                self.bar.set_prefix(step.to_string());
            }
        }
    }

    /// Whether nothing is drawn, so the caller prints status lines itself.
    pub(crate) fn is_hidden(&self) -> bool {
        #[cfg(feature = "progress")]
        return self.bar.is_hidden();
        #[cfg(not(feature = "progress"))]
        true
    }

    /// The status line as printed when the bar is hidden: `step 120/1000 <message>`.
    pub(crate) fn status_line(&self, step: u64) -> String {
        match self.measure {
            Measure::Steps { total } if total != u64::MAX => format!("step {step}/{total} {}", self.message),
            _ => format!("step {step} {}", self.message),
        }
    }

    /// Prints a line above the bar, or on its own when the bar is hidden (indicatif drops
    /// `println` on a hidden bar).
    pub(crate) fn say(&self, line: String) {
        #[cfg(feature = "progress")]
        if !self.bar.is_hidden() {
            self.bar.println(line);
            return;
        }
        println!("{line}");
    }

    /// Leaves the bar as it is (an error follows).
    pub(crate) fn abandon(&self) {
        #[cfg(feature = "progress")]
        self.bar.abandon();
    }

    /// Completes the bar.
    pub(crate) fn finish(&self) {
        #[cfg(feature = "progress")]
        self.bar.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_display_prints_the_step_out_of_the_limit_or_alone() {
        let mut steps = Progress::new(Measure::Steps { total: 1000 }, 0, false);
        steps.advance(120, 3, "D_x 0.5".into());
        assert!(steps.is_hidden());
        assert_eq!(steps.status_line(120), "step 120/1000 D_x 0.5");
        let mut clock = Progress::new(Measure::Seconds { limit: 60 }, 7, false);
        clock.advance(9, 30, "D_x 0.4".into());
        assert_eq!(clock.status_line(9), "step 9 D_x 0.4");
    }
}
