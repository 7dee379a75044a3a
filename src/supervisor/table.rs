//! The tasks in flight, by id. Ids are handed out in order and mostly finish in order, so a
//! window over the id range (a ring of slots from the oldest live id) serves every lookup with an
//! index instead of a hash.

use std::collections::VecDeque;

use crate::scheduler::TaskId;

/// Live values keyed by dense, increasing ids.
#[derive(Debug)]
pub struct Table<T> {
    /// The id of `slots[0]`.
    base: TaskId,
    slots: VecDeque<Option<T>>,
    len: usize,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            base: 1,
            slots: VecDeque::new(),
            len: 0,
        }
    }
}

impl<T> Table<T> {
    fn index(&self, id: TaskId) -> Option<usize> {
        let i = id.checked_sub(self.base)? as usize;
        (i < self.slots.len()).then_some(i)
    }

    /// Adds `value` under `id`, which must not be below any id already removed from the front.
    pub fn insert(&mut self, id: TaskId, value: T) {
        if self.slots.is_empty() {
            self.base = id;
        }
        let Some(i) = id.checked_sub(self.base) else {
            panic!(
                "task ids are handed out in order: {id} came after {}",
                self.base
            );
        };
        let i = i as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        if self.slots[i].replace(value).is_none() {
            self.len += 1;
        }
    }

    pub fn get(&self, id: TaskId) -> Option<&T> {
        self.index(id).and_then(|i| self.slots[i].as_ref())
    }

    pub fn get_mut(&mut self, id: TaskId) -> Option<&mut T> {
        self.index(id).and_then(|i| self.slots[i].as_mut())
    }

    /// Removes and returns the value under `id`; the window moves past finished ids.
    pub fn remove(&mut self, id: TaskId) -> Option<T> {
        let i = self.index(id)?;
        let value = self.slots[i].take()?;
        self.len -= 1;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(value)
    }

    /// Every live value.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_removal_keeps_the_rest() {
        let mut t = Table::default();
        for id in 5..10 {
            t.insert(id, id * 10);
        }
        assert_eq!(t.remove(7), Some(70));
        assert_eq!(t.remove(7), None);
        assert_eq!(t.remove(5), Some(50));
        assert_eq!(t.get(6), Some(&60));
        assert_eq!(t.get(4), None);
        assert_eq!(t.get(12), None);
        *t.get_mut(9).unwrap() += 1;
        assert_eq!(t.values().copied().collect::<Vec<_>>(), vec![60, 80, 91]);
        assert_eq!(t.len(), 3);
        for id in [6, 8, 9] {
            t.remove(id);
        }
        assert!(t.is_empty());
        t.insert(20, 1);
        assert_eq!(t.get(20), Some(&1));
    }
}
