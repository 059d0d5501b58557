//! Credit accounting, with no I/O: what a sender may send, and shared budgets.
//!
//! Flow control is counted in bytes, as in Zilla. A receiver grants credit with
//! [`Window`] frames; every frame that spends credit costs its length plus the receiver's
//! padding, and at least one byte, so credit bounds the number of queued frames as well as
//! their bytes. A [`Budget`] is a pool that several streams draw their credit from (a
//! connection-level window shared by the streams multiplexed on it).

use thiserror::Error;

use crate::frame::Window;

/// Why credit could not be spent or granted.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
pub enum CreditError {
    /// The frame costs more than the credit available.
    #[error("frame costs {cost} bytes of credit but only {available} are available")]
    Insufficient {
        /// What the frame costs.
        cost: u64,
        /// What was available.
        available: u64,
    },
    /// Granting would let the outstanding credit pass `u32::MAX` bytes.
    #[error("window overflow: {outstanding} + {credit} exceeds the largest window")]
    Overflow {
        /// Credit outstanding before the grant.
        outstanding: u64,
        /// Credit the grant added.
        credit: u32,
    },
    /// The direction was reset or aborted: its credit was released.
    #[error("the stream's credit was released")]
    Released,
}

/// The largest credit that may be outstanding at once on one direction.
pub const MAX_OUTSTANDING: u64 = u32::MAX as u64;

/// The credit of one stream direction, seen from its sender.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credit {
    granted: u64,
    spent: u64,
    padding: u32,
    released: bool,
}

impl Credit {
    /// No credit yet.
    pub const fn new() -> Self {
        Credit {
            granted: 0,
            spent: 0,
            padding: 0,
            released: false,
        }
    }

    /// Bytes of credit that may still be spent.
    pub fn available(&self) -> u64 {
        self.granted - self.spent
    }

    /// The per-frame padding the receiver asked for.
    pub fn padding(&self) -> u32 {
        self.padding
    }

    /// Whether the credit was released by a reset or an abort.
    pub fn is_released(&self) -> bool {
        self.released
    }

    /// What a frame of `len` payload bytes costs: its length plus the padding, at least one.
    pub fn cost(&self, len: usize) -> u64 {
        (len as u64).saturating_add(u64::from(self.padding)).max(1)
    }

    /// Whether a frame of `len` bytes may be sent now.
    pub fn can_spend(&self, len: usize) -> bool {
        !self.released && self.cost(len) <= self.available()
    }

    /// Spends the cost of a frame of `len` bytes, returning that cost.
    pub fn spend(&mut self, len: usize) -> Result<u64, CreditError> {
        if self.released {
            return Err(CreditError::Released);
        }
        let cost = self.cost(len);
        let available = self.available();
        if cost > available {
            return Err(CreditError::Insufficient { cost, available });
        }
        self.spent += cost;
        Ok(cost)
    }

    /// Adds the credit of a window and adopts its padding. A grant after release is ignored:
    /// the direction is over.
    pub fn grant(&mut self, window: Window) -> Result<(), CreditError> {
        if self.released {
            return Ok(());
        }
        let outstanding = self.available();
        if outstanding + u64::from(window.credit) > MAX_OUTSTANDING {
            return Err(CreditError::Overflow {
                outstanding,
                credit: window.credit,
            });
        }
        self.granted += u64::from(window.credit);
        self.padding = window.padding;
        Ok(())
    }

    /// Releases all credit (on reset or abort), returning what was still unspent.
    pub fn release(&mut self) -> u64 {
        let unspent = self.available();
        self.spent = self.granted;
        self.released = true;
        unspent
    }
}

/// A pool of credit shared by several streams.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    capacity: u64,
    claimed: u64,
}

impl Budget {
    /// A pool of `capacity` bytes, none claimed.
    pub const fn new(capacity: u64) -> Self {
        Budget {
            capacity,
            claimed: 0,
        }
    }

    /// The pool's size.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes not claimed by any stream.
    pub fn available(&self) -> u64 {
        self.capacity - self.claimed
    }

    /// Claims up to `want` bytes, returning how many were claimed.
    pub fn claim(&mut self, want: u64) -> u64 {
        let got = want.min(self.available());
        self.claimed += got;
        got
    }

    /// Returns `n` claimed bytes to the pool; never more than were claimed.
    pub fn release(&mut self, n: u64) {
        self.claimed -= n.min(self.claimed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_frame_spends_padding() {
        let mut credit = Credit::new();
        credit
            .grant(Window {
                credit: 100,
                padding: 7,
            })
            .unwrap();
        assert_eq!(credit.spend(0), Ok(7));
        assert_eq!(credit.available(), 93);
    }

    #[test]
    fn empty_frame_without_padding_still_costs_one_byte() {
        let mut credit = Credit::new();
        credit
            .grant(Window {
                credit: 2,
                padding: 0,
            })
            .unwrap();
        assert_eq!(credit.spend(0), Ok(1));
        assert_eq!(credit.spend(0), Ok(1));
        assert!(matches!(
            credit.spend(0),
            Err(CreditError::Insufficient { .. })
        ));
    }

    #[test]
    fn release_zeroes_and_ignores_later_windows() {
        let mut credit = Credit::new();
        credit
            .grant(Window {
                credit: 50,
                padding: 0,
            })
            .unwrap();
        credit.spend(10).unwrap();
        assert_eq!(credit.release(), 40);
        credit
            .grant(Window {
                credit: 50,
                padding: 0,
            })
            .unwrap();
        assert_eq!(credit.available(), 0);
        assert_eq!(credit.spend(0), Err(CreditError::Released));
    }

    #[test]
    fn overflow_is_refused() {
        let mut credit = Credit::new();
        credit
            .grant(Window {
                credit: u32::MAX,
                padding: 0,
            })
            .unwrap();
        assert!(matches!(
            credit.grant(Window {
                credit: 1,
                padding: 0
            }),
            Err(CreditError::Overflow { .. })
        ));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Grant {
            stream: usize,
            credit: u32,
            padding: u32,
        },
        Send {
            stream: usize,
            len: usize,
        },
        Consume {
            stream: usize,
        },
        Reset {
            stream: usize,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4usize, 0..4096u32, 0..64u32).prop_map(|(stream, credit, padding)| Op::Grant {
                stream,
                credit,
                padding
            }),
            (0..4usize, 0..2048usize).prop_map(|(stream, len)| Op::Send { stream, len }),
            (0..4usize).prop_map(|stream| Op::Consume { stream }),
            (0..4usize).prop_map(|stream| Op::Reset { stream }),
        ]
    }

    /// One stream in the model: its sender's credit and the cost of frames sent but not yet
    /// consumed by the receiver.
    #[derive(Default)]
    struct Stream {
        credit: Credit,
        in_flight: u64,
    }

    proptest! {
        /// Streams draw credit from a shared budget, send, are consumed and reset in any
        /// order. Credit is never overspent, windows never shrink, empty frames spend their
        /// padding, and a reset returns everything the stream held to the budget.
        #[test]
        fn credit_invariants(ops in proptest::collection::vec(op(), 0..200)) {
            const CAPACITY: u64 = 8192;
            let mut budget = Budget::new(CAPACITY);
            let mut streams: Vec<Stream> = (0..4).map(|_| Stream::default()).collect();
            for op in ops {
                match op {
                    Op::Grant { stream, credit, padding } => {
                        let s = &mut streams[stream];
                        if s.credit.is_released() {
                            continue;
                        }
                        let claimed = budget.claim(u64::from(credit));
                        let before = s.credit.available();
                        let window = Window { credit: claimed as u32, padding };
                        s.credit.grant(window).unwrap();
                        // Windows never shrink.
                        prop_assert!(s.credit.available() >= before);
                        prop_assert_eq!(s.credit.available(), before + claimed);
                    }
                    Op::Send { stream, len } => {
                        let s = &mut streams[stream];
                        let before = s.credit.available();
                        let cost = s.credit.cost(len);
                        match s.credit.spend(len) {
                            Ok(spent) => {
                                prop_assert_eq!(spent, cost);
                                prop_assert!(spent >= 1);
                                prop_assert!(spent >= u64::from(s.credit.padding()));
                                prop_assert!(cost <= before);
                                s.in_flight += spent;
                            }
                            // Never send past credit.
                            Err(CreditError::Insufficient { cost: c, available }) => {
                                prop_assert!(c > available);
                                prop_assert_eq!(available, before);
                            }
                            Err(CreditError::Released) => prop_assert!(s.credit.is_released()),
                            Err(e) => prop_assert!(false, "unexpected {e}"),
                        }
                    }
                    Op::Consume { stream } => {
                        let s = &mut streams[stream];
                        budget.release(s.in_flight);
                        s.in_flight = 0;
                    }
                    Op::Reset { stream } => {
                        let s = &mut streams[stream];
                        // A reset drops what was in flight and releases unspent credit.
                        let unspent = s.credit.release();
                        budget.release(unspent + s.in_flight);
                        s.in_flight = 0;
                        prop_assert_eq!(s.credit.available(), 0);
                    }
                }
                let held: u64 = streams.iter().map(|s| s.credit.available() + s.in_flight).sum();
                prop_assert_eq!(held + budget.available(), CAPACITY);
            }
            for s in &mut streams {
                let unspent = s.credit.release();
                budget.release(unspent + s.in_flight);
            }
            prop_assert_eq!(budget.available(), CAPACITY);
        }
    }
}
