//! A stream's one timer, for state machines: armed for a deadline, moved only when the
//! deadline moves, and holding no memory while disarmed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::time::{Instant, Sleep};

/// A timer a state machine polls for the deadline of its current state.
///
/// A deadline that moves later (a heartbeat pushed back by every write) does not move the
/// timer: it fires at the earlier deadline, finds the later one not yet due and only then
/// moves, so a busy stream moves its timer once per period rather than once per write. A
/// poll with the waker the timer already holds costs a flag check.
#[derive(Debug, Default)]
pub struct Timer {
    armed: Option<Pin<Box<Armed>>>,
}

pin_project_lite::pin_project! {
    #[derive(Debug)]
    struct Armed {
        #[pin]
        sleep: Sleep,
        // The waker the sleep holds, once polled.
        waker: Option<Waker>,
    }
}

impl Timer {
    /// `Ready` once `at` has passed; else makes sure the waker is woken by then.
    pub fn poll_at(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let armed = self.armed.get_or_insert_with(|| {
            Box::pin(Armed {
                sleep: tokio::time::sleep_until(at),
                waker: None,
            })
        });
        let mut armed = armed.as_mut().project();
        let deadline = armed.sleep.deadline();
        if deadline > at {
            armed.sleep.as_mut().reset(at);
        } else if armed.sleep.is_elapsed() {
            if deadline == at || Instant::now() >= at {
                return Poll::Ready(());
            }
            armed.sleep.as_mut().reset(at);
        } else if armed
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let polled = armed.sleep.poll(cx);
        if polled.is_pending() {
            *armed.waker = Some(cx.waker().clone());
        }
        polled
    }

    /// Disarms the timer and gives its memory back.
    pub fn clear(&mut self) {
        self.armed = None;
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
        let earlier = later + Duration::from_secs(1);
        std::future::poll_fn(|cx| {
            assert!(
                timer
                    .poll_at(later + Duration::from_secs(5), cx)
                    .is_pending()
            );
            assert!(timer.poll_at(earlier, cx).is_pending());
            Poll::Ready(())
        })
        .await;
        std::future::poll_fn(|cx| timer.poll_at(earlier, cx)).await;
        assert_eq!(Instant::now(), earlier);
        timer.clear();
        assert!(timer.armed.is_none());
    }
}
