//! The registration table both backends keep: fixed capacity (S8), one
//! entry per fd (EEXIST, ENOENT), and a generation per slot so that a
//! completion or ring entry made for a deleted or modified registration is
//! recognised and dropped (S5).

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;

use slab::Slab;

use crate::sys::errno;
use crate::Interest;

/// Names one registration: its slot and that slot's generation when the
/// registration was made or last modified. Packs into a `u64`
/// (`generation << 32 | slot`) for kernel user data.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Key {
    slot: u32,
    generation: u32,
}

impl Key {
    /// The key of `slot` at `generation`.
    pub const fn new(slot: u32, generation: u32) -> Key {
        Key { slot, generation }
    }
    /// The slot index, below the table's capacity.
    pub const fn slot(self) -> usize {
        self.slot as usize
    }
    /// The slot's generation.
    pub const fn generation(self) -> u32 {
        self.generation
    }
    /// `generation << 32 | slot`.
    pub const fn to_u64(self) -> u64 {
        (self.generation as u64) << 32 | self.slot as u64
    }
    /// The inverse of [`Key::to_u64`].
    pub const fn from_u64(v: u64) -> Key {
        Key {
            slot: v as u32,
            generation: (v >> 32) as u32,
        }
    }
}

/// One registration as the table holds it.
#[derive(Debug)]
pub struct Registration<T> {
    /// The registered fd number.
    pub fd: RawFd,
    /// The current interest.
    pub interest: Interest,
    /// The caller's data, carried by events.
    pub data: u64,
    /// The current key; changes on `modify`.
    pub key: Key,
    /// Backend state kept with the registration.
    pub extra: T,
}

/// A fixed-capacity table of registrations indexed by fd and by [`Key`].
/// Inserting never reallocates: the slab is sized at creation.
#[derive(Debug)]
pub struct Table<T> {
    slab: Slab<Registration<T>>,
    generations: Vec<u32>,
    by_fd: HashMap<RawFd, u32>,
    capacity: usize,
}

impl<T> Table<T> {
    /// A table for at most `capacity` registrations, allocated in full
    /// now. EINVAL for 0 or a capacity beyond a `u32` slot number; EMFILE
    /// beyond the most fds a process may ever hold (`fs.nr_open`: each
    /// registration is a distinct fd number, so no process could fill it);
    /// ENOMEM when the memory is not there. Never panics or aborts,
    /// whatever the capacity.
    pub fn with_capacity(capacity: usize) -> io::Result<Table<T>> {
        if capacity == 0 || capacity > u32::MAX as usize {
            return Err(errno(libc::EINVAL));
        }
        let fd_limit = crate::sys::max_fds();
        if capacity as u64 > fd_limit {
            return Err(errno(libc::EMFILE));
        }
        let no_memory = |_| errno(libc::ENOMEM);
        let mut generations = Vec::new();
        generations.try_reserve_exact(capacity).map_err(no_memory)?;
        generations.resize(capacity, 0);
        let mut by_fd = HashMap::new();
        by_fd.try_reserve(capacity).map_err(no_memory)?;
        // The slab has no fallible constructor: ask for its size first, so
        // a failure is ENOMEM here rather than an abort inside it.
        Vec::<Registration<T>>::new()
            .try_reserve_exact(capacity)
            .map_err(no_memory)?;
        Ok(Table {
            slab: Slab::with_capacity(capacity),
            generations,
            by_fd,
            capacity,
        })
    }

    /// The capacity fixed at creation.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of registrations.
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// No registrations.
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Checks what [`Table::insert`] would check, without inserting:
    /// EINVAL for a bad interest, EEXIST, ENOSPC.
    pub fn check_insert(&self, fd: RawFd, interest: Interest) -> io::Result<()> {
        interest.validate()?;
        if self.by_fd.contains_key(&fd) {
            return Err(errno(libc::EEXIST));
        }
        if self.slab.len() >= self.capacity {
            return Err(errno(libc::ENOSPC));
        }
        Ok(())
    }

    /// Adds a registration. Errors as [`Table::check_insert`]; on error
    /// nothing changes.
    pub fn insert(
        &mut self,
        fd: RawFd,
        interest: Interest,
        data: u64,
        extra: T,
    ) -> io::Result<Key> {
        self.check_insert(fd, interest)?;
        let entry = self.slab.vacant_entry();
        let slot = entry.key();
        debug_assert!(slot < self.capacity, "slab grew past its capacity");
        let key = Key {
            slot: slot as u32,
            generation: self.generations[slot],
        };
        entry.insert(Registration {
            fd,
            interest,
            data,
            key,
            extra,
        });
        self.by_fd.insert(fd, slot as u32);
        Ok(key)
    }

    /// The registration `key` names, if it is still current (same slot and
    /// generation).
    #[inline]
    pub fn get(&self, key: Key) -> Option<&Registration<T>> {
        self.slab.get(key.slot()).filter(|r| r.key == key)
    }

    /// Mutable form of [`Table::get`].
    #[inline]
    pub fn get_mut(&mut self, key: Key) -> Option<&mut Registration<T>> {
        self.slab.get_mut(key.slot()).filter(|r| r.key == key)
    }

    /// The registration of `fd`, or ENOENT.
    pub fn by_fd(&self, fd: RawFd) -> io::Result<&Registration<T>> {
        match self.by_fd.get(&fd) {
            Some(&slot) => Ok(&self.slab[slot as usize]),
            None => Err(errno(libc::ENOENT)),
        }
    }

    /// Mutable form of [`Table::by_fd`].
    pub fn by_fd_mut(&mut self, fd: RawFd) -> io::Result<&mut Registration<T>> {
        match self.by_fd.get(&fd) {
            Some(&slot) => Ok(&mut self.slab[slot as usize]),
            None => Err(errno(libc::ENOENT)),
        }
    }

    /// Gives the registration of `fd` a new interest, data and generation,
    /// so anything made for the old key is stale. Returns the old key and
    /// the registration. ENOENT or EINVAL change nothing.
    pub fn modify(
        &mut self,
        fd: RawFd,
        interest: Interest,
        data: u64,
    ) -> io::Result<(Key, &mut Registration<T>)> {
        interest.validate()?;
        let slot = *self.by_fd.get(&fd).ok_or_else(|| errno(libc::ENOENT))? as usize;
        let generation = &mut self.generations[slot];
        *generation = generation.wrapping_add(1);
        let reg = &mut self.slab[slot];
        let old = reg.key;
        reg.key = Key {
            slot: slot as u32,
            generation: *generation,
        };
        reg.interest = interest;
        reg.data = data;
        Ok((old, reg))
    }

    /// Removes the registration of `fd`; its key is stale from now on.
    /// ENOENT changes nothing.
    pub fn remove(&mut self, fd: RawFd) -> io::Result<Registration<T>> {
        let slot = self.by_fd.remove(&fd).ok_or_else(|| errno(libc::ENOENT))? as usize;
        let generation = &mut self.generations[slot];
        *generation = generation.wrapping_add(1);
        Ok(self.slab.remove(slot))
    }

    /// Every registration.
    pub fn iter(&self) -> impl Iterator<Item = &Registration<T>> + '_ {
        self.slab.iter().map(|(_, r)| r)
    }

    /// Removes every registration, returning them.
    pub fn drain(&mut self) -> impl Iterator<Item = Registration<T>> + '_ {
        self.by_fd.clear();
        for g in &mut self.generations {
            *g = g.wrapping_add(1);
        }
        self.slab.drain()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_through_u64() {
        let k = Key {
            slot: 7,
            generation: u32::MAX,
        };
        assert_eq!(Key::from_u64(k.to_u64()), k);
    }

    #[test]
    fn s08_s09_errors_change_nothing() {
        let mut t = Table::with_capacity(2).unwrap();
        let a = t.insert(10, Interest::READABLE, 1, ()).unwrap();
        let e = t.insert(10, Interest::WRITABLE, 2, ()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        t.insert(11, Interest::READABLE, 3, ()).unwrap();
        let e = t.insert(12, Interest::READABLE, 4, ()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        let e = t.modify(99, Interest::READABLE, 5).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let e = t.modify(10, Interest::from_epoll_bits(0), 5).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(t.get(a).unwrap().data, 1);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn s05_stale_keys_after_modify_remove_and_reuse() {
        let mut t = Table::with_capacity(1).unwrap();
        let a = t.insert(10, Interest::READABLE, 1, ()).unwrap();
        let (old, reg) = t.modify(10, Interest::READABLE, 2).unwrap();
        let b = reg.key;
        assert_eq!(old, a);
        assert!(t.get(a).is_none());
        assert_eq!(t.get(b).unwrap().data, 2);
        t.remove(10).unwrap();
        assert!(t.get(b).is_none());
        let c = t.insert(10, Interest::READABLE, 3, ()).unwrap();
        assert_eq!(c.slot(), a.slot());
        assert!(t.get(a).is_none() && t.get(b).is_none());
        assert_eq!(t.get(c).unwrap().data, 3);
    }
}
