//! A stream's one timer, for state machines: armed for a deadline, moved only when the
//! deadline moves, and holding no memory while disarmed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// A timer a state machine polls for the deadline of its current state.
#[derive(Debug, Default)]
pub struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Timer {
    /// `Ready` once `at` has passed; else registers the waker for it. The timer is moved,
    /// not made anew, when `at` differs from the last deadline.
    pub fn poll_at(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if sleep.deadline() != at {
            sleep.as_mut().reset(at);
        }
        sleep.as_mut().poll(cx)
    }

    /// Disarms the timer and gives its memory back.
    pub fn clear(&mut self) {
        self.sleep = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fires_at_the_latest_deadline_it_was_given() {
        let mut timer = Timer::default();
        let start = Instant::now();
        let first = start + Duration::from_secs(5);
        let later = start + Duration::from_secs(10);
        std::future::poll_fn(|cx| {
            assert!(timer.poll_at(first, cx).is_pending());
            assert!(timer.poll_at(later, cx).is_pending());
            Poll::Ready(())
        })
        .await;
        std::future::poll_fn(|cx| timer.poll_at(later, cx)).await;
        assert_eq!(Instant::now(), later);
        timer.clear();
        assert!(timer.sleep.is_none());
    }
}
