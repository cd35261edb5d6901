//! The one way the gateway takes a `std` mutex.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, poisoned or not. Every critical section in the gateway leaves its
/// data consistent at each step (no code between two writes can panic), so a panic
/// elsewhere while it was held is no reason to refuse the data to every later request.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
