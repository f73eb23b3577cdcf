//! The memory the decoding workers share: each image reserves what decoding and thumbnailing it
//! will take (from its header, before any pixel is decoded) and waits while others hold the
//! budget, so six workers on 40-megapixel 16-bit PNGs cannot take 4 GB between them; an image
//! that alone needs more than the whole budget is refused.

use std::sync::{Condvar, Mutex, PoisonError};

/// A budget of bytes shared between threads.
pub(crate) struct DecodeBudget {
    total: u64,
    free: Mutex<u64>,
    freed: Condvar,
}

/// Bytes held from a [`DecodeBudget`] until dropped.
pub(crate) struct Reservation<'a> {
    budget: &'a DecodeBudget,
    bytes: u64,
}

impl DecodeBudget {
    /// A budget of `total` bytes.
    pub(crate) fn new(total: u64) -> Self {
        Self {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
        }
    }

    /// The whole budget in bytes.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// What decoding an image of `width` x `height` whose decoded buffer is `decoded` bytes
    /// takes at its peak: the buffer, its RGBA copy for the thumbnail and its RGB copy for the
    /// model (8 bytes a pixel together, with room for the resized copies).
    pub(crate) fn cost(width: u32, height: u32, decoded: u64) -> u64 {
        decoded.saturating_add(8u64.saturating_mul(u64::from(width) * u64::from(height)))
    }

    /// Waits until `bytes` are free and holds them; `None` if `bytes` exceed the whole budget.
    pub(crate) fn reserve(&self, bytes: u64) -> Option<Reservation<'_>> {
        if bytes > self.total {
            return None;
        }
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free < bytes {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= bytes;
        Some(Reservation {
            budget: self,
            bytes,
        })
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut free = self
            .budget
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *free += self.bytes;
        drop(free);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn holders_never_exceed_the_budget_and_an_oversized_image_is_refused() {
        let budget = DecodeBudget::new(100);
        assert!(budget.reserve(101).is_none());
        let held = AtomicU64::new(0);
        let most = AtomicU64::new(0);
        std::thread::scope(|s| {
            for i in 0..8u64 {
                let (budget, held, most) = (&budget, &held, &most);
                s.spawn(move || {
                    let bytes = 30 + i * 5;
                    let _r = budget.reserve(bytes).expect("fits");
                    let now = held.fetch_add(bytes, Ordering::SeqCst) + bytes;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    held.fetch_sub(bytes, Ordering::SeqCst);
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 100);
        assert_eq!(
            *budget.free.lock().unwrap(),
            100,
            "everything is given back"
        );
        assert_eq!(DecodeBudget::cost(10, 10, 300), 1100);
    }
}
