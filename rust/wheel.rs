//! A hierarchical timing wheel holding every armed schedule with its next deadline.
//!
//! The wheel re-arms schedules itself (through [`NextFire`]), so its caller only sees the fires
//! that are due. The design follows tokio's timer wheel (levels of 64 slots, each level's slot 64
//! times wider than the one below), with an overflow list, a due list for deadlines already
//! passed, and a per-entry catch-up limit.
//!
//! # Time
//!
//! Resolution is one millisecond. Deadlines are epoch milliseconds (`i64`); inside the wheel they
//! are *ticks*: the same value with its sign bit flipped ([`tick_of`]/[`ms_of`]). That map keeps
//! the order and turns the slot arithmetic into plain bit slicing of a `u64`.
//!
//! # Layout
//!
//! * [`LEVELS`] (6) levels of [`SLOTS_PER_LEVEL`] (64) slots.
//! * A slot on level `L` spans [`slot_width`]`(L) = 64^L` ms: 1 ms, 64 ms, ~4.1 s, ~4.4 min,
//!   ~4.7 h, ~12.4 days. Level `L` as a whole reaches [`level_span`]`(L) = 64^(L+1)` ms, so the
//!   top level reaches [`BLOCK_SPAN_MS`] `= 2^36` ms (~795 days).
//! * A tick's *digit* on level `L` is its bits `6L..6L+6` ([`slot_for`]); the bits above the
//!   top level's digit select an aligned *block* of `BLOCK_SPAN_MS` ticks ([`block_of`]).
//!
//! # Invariants (checked by `check_invariants` in the tests, and by `debug_assert!`s)
//!
//! 1. `elapsed` is the last instant the wheel has processed: every fire at or before it has been
//!    reported, except those of entries armed (or rescheduled) at or before it since, which wait
//!    in the due list. It starts at the `now_ms` given to [`Wheel::new`], never decreases, and
//!    equals the `now_ms` of the last [`Wheel::advance`] once that returns.
//! 2. Every stored entry sits in exactly one list, a function of its deadline `d` and `elapsed`
//!    (`locate`; entries do not record it, which lets a whole slot move in O(1)):
//!    * the **due list** when its deadline is `<= elapsed` (armed in the past; it fires at the
//!      next advance, before anything in the levels);
//!    * a **level slot** when its deadline `d > elapsed` lies in `elapsed`'s block: on level
//!      [`level_for`]`(elapsed, d)` (the highest digit in which `d` and `elapsed` differ) and in
//!      slot `slot_for(d, level)`;
//!    * the **overflow list** when `d` lies in a later block than `elapsed`.
//! 3. Because `d > elapsed` and both agree above the level's digit, an occupied slot is always
//!    strictly ahead of `elapsed`'s digit on its level. A level never wraps around, and the first
//!    occupied slot of the lowest non-empty level holds the earliest deadlines in the levels: a
//!    level's entries all lie before the next slot boundary of the level above.
//! 4. A level-0 slot holds entries with one and the same deadline; a level-`L` slot starting at
//!    `s` holds deadlines in `s .. s + slot_width(L)`.
//! 5. Overflow entries are later than every level entry, and due entries are earlier than both.
//!
//! # Advancing
//!
//! [`Wheel::advance`] first fires the due list in deadline order (a binary heap; the list is empty
//! in steady state). It then repeatedly takes the earliest occupied slot; while that slot starts at
//! or before `now`, it sets `elapsed` to the slot's start and empties it: entries whose deadline is
//! that start fire and are re-armed from it, the others cascade to a lower level (all at once
//! when they share one deadline, as jobs with the same cron or interval do). When the levels
//! are empty and `now` lies in a later block, the overflow list is re-examined: `elapsed` jumps to
//! the earliest overflow deadline, those entries fire, and the ones now in `elapsed`'s block move
//! into the levels. Finally `elapsed = now`; if that enters a new block, overflow entries of that
//! block move into the levels. Overflow is therefore scanned only when the wheel crosses a block
//! boundary (once every ~795 days of wheel time, or when it jumps over one).
//!
//! Re-arming asks each fired entry's schedule for its next instant. Entries holding one shared
//! rule ([`NextFire::rule_id`]) and firing at one instant get one answer: the last question of
//! the advance is remembered, and a slot's entries come out grouped as they were armed.
//!
//! # Ordering
//!
//! The fires appended by one advance are in non-decreasing `scheduled_ms` order, across entries
//! and across the catch-up fires of one entry (which are re-armed into the wheel like any other
//! deadline). The order among fires of the same millisecond is unspecified.
//!
//! # Cost
//!
//! `insert`/`insert_at`/`remove`/`reschedule` are O(1): a hash lookup keyed by
//! `(job_id, schedule_index)` into a slab, and splices of intrusive doubly-linked lists (one list
//! per slot, one per job). `advance` costs O(fires + cascades + occupied slots visited), plus
//! O(past-due · log past-due) for the due list and O(overflow) per block boundary crossed; empty
//! slots are skipped with one `trailing_zeros` on the level's occupancy bitmap, and entries that
//! are not due are never touched except when their slot cascades (at most `LEVELS - 1` times per
//! arming). `next_deadline` is O(LEVELS): every list (slot, due, overflow) keeps its earliest
//! deadline, so it reads the earliest occupied slot's; only after that slot's earliest entry was
//! removed (not fired: a fired slot is emptied whole) does it walk the slot once. The answer is
//! cached until the next change.

use std::cmp::Reverse;
use std::collections::hash_map::{Entry as MapEntry, HashMap};
use std::collections::BinaryHeap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits of a tick resolved by one level.
pub const SLOT_BITS: u32 = 6;
/// Slots on each level; a slot on level `L + 1` is as wide as all of level `L`.
pub const SLOTS_PER_LEVEL: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = SLOTS_PER_LEVEL as u64 - 1;
/// Number of levels; together they resolve `WHEEL_BITS` bits of a tick.
pub const LEVELS: usize = 6;
const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// How far the levels reach: one aligned block of ticks (2^36 ms, about 795 days). Deadlines in a
/// later block than `elapsed` wait in the overflow list.
pub const BLOCK_SPAN_MS: u64 = 1 << WHEEL_BITS;
/// Fires one entry may report in a single advance before the rest are skipped.
pub const DEFAULT_CATCHUP_LIMIT: u32 = 1024;

/// Link value meaning "no entry". Slab indices stay below it.
const NIL: u32 = u32::MAX;
const SIGN_BIT: u64 = 1 << 63;

/// What the wheel needs from a schedule: its next fire strictly after an instant (epoch ms), or
/// `None` if it never fires again.
pub trait NextFire {
    fn next_fire_after_ms(&self, after_ms: i64) -> Option<i64>;

    /// An identity shared by schedules that answer every question alike (one parsed rule held
    /// by many entries), or `None`. Within one advance the wheel asks such a rule about an
    /// instant once, however many entries hold it: 100k jobs on one expression re-arm for the
    /// price of one evaluation each, not one search each.
    fn rule_id(&self) -> Option<usize> {
        None
    }
}

/// One due fire reported by [`Wheel::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    pub job_id: u64,
    pub schedule_index: u32,
    /// The instant the schedule was due (not the instant the wheel noticed).
    pub scheduled_ms: i64,
    /// The entry hit the catch-up limit: instants after this one, up to the advance's `now_ms`,
    /// were skipped, and the entry was re-armed strictly after `now_ms`.
    pub truncated: bool,
}

/// Order-preserving map from epoch ms to the wheel's unsigned ticks.
#[inline]
pub const fn tick_of(ms: i64) -> u64 {
    (ms as u64) ^ SIGN_BIT
}

/// Inverse of [`tick_of`].
#[inline]
pub const fn ms_of(tick: u64) -> i64 {
    (tick ^ SIGN_BIT) as i64
}

#[inline]
const fn shift_of(level: usize) -> u32 {
    SLOT_BITS * level as u32
}

/// Width in ms of one slot on `level`.
#[inline]
pub const fn slot_width(level: usize) -> u64 {
    1 << shift_of(level)
}

/// Width in ms of all of `level` (one slot of the level above).
#[inline]
pub const fn level_span(level: usize) -> u64 {
    slot_width(level) << SLOT_BITS
}

/// `tick`'s digit on `level`. The mask keeps it below `SLOTS_PER_LEVEL` whatever the input.
#[inline]
pub const fn slot_for(tick: u64, level: usize) -> usize {
    ((tick >> shift_of(level)) & SLOT_MASK) as usize
}

/// The level holding `deadline` while the wheel stands at `elapsed`, or `None` when `deadline`
/// lies in another block (overflow). Only meaningful for `deadline > elapsed`.
#[inline]
pub const fn level_for(elapsed: u64, deadline: u64) -> Option<usize> {
    // Or-ing the level-0 digit in makes equal ticks land on level 0 instead of having no
    // highest differing bit.
    let differing = (elapsed ^ deadline) | SLOT_MASK;
    if differing >= BLOCK_SPAN_MS {
        return None;
    }
    let highest_bit = u64::BITS - 1 - differing.leading_zeros();
    Some((highest_bit / SLOT_BITS) as usize)
}

/// Index of the aligned block of `BLOCK_SPAN_MS` ticks holding `tick`.
#[inline]
pub const fn block_of(tick: u64) -> u64 {
    tick >> WHEEL_BITS
}

/// First tick of `slot` on `level` in the level rotation `elapsed` is in.
#[inline]
const fn slot_start(elapsed: u64, level: usize, slot: usize) -> u64 {
    (elapsed & !(level_span(level) - 1)) | ((slot as u64) << shift_of(level))
}

/// Whether a slab cell holds an entry, and whether that entry is in a timing list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A free cell, linked in the free list through `next`.
    Vacant,
    /// Armed but in no timing list: being moved inside `advance`, or about to be placed.
    Detached,
    /// In the list `locate(elapsed, deadline)` names.
    Linked,
}

/// A timing list of the wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Location {
    Due,
    Slot { level: usize, slot: usize },
    Overflow,
}

/// The list an entry due at `deadline` belongs in while the wheel stands at `elapsed`
/// (invariant 2). Entries do not record their list: it follows from their deadline, which is
/// what lets a whole slot move to another list in O(1).
#[inline]
const fn locate(elapsed: u64, deadline: u64) -> Location {
    if deadline <= elapsed {
        return Location::Due;
    }
    match level_for(elapsed, deadline) {
        Some(level) => Location::Slot { level, slot: slot_for(deadline, level) },
        None => Location::Overflow,
    }
}

/// The hot part of an entry: everything advancing and cascading touch. Schedules live in a
/// parallel vector (`Slab::schedules`) because they can be large (a cron schedule is hundreds
/// of bytes) and are only read when the entry fires.
struct Entry {
    /// Tick of the next fire.
    deadline: u64,
    job_id: u64,
    schedule_index: u32,
    state: State,
    prev: u32,
    next: u32,
    job_prev: u32,
    job_next: u32,
    /// Fires reported in the advance numbered `burst_seq`; compared to the catch-up limit.
    burst_count: u32,
    burst_seq: u64,
}

/// Head and tail of an intrusive doubly-linked list threaded through `Entry::{prev, next}`,
/// with the earliest and latest deadline in it while those are known. Adding keeps them exact;
/// removing an entry that held one (unless all share one deadline) makes both unknown until
/// the list empties. They let `next_deadline` read a slot's earliest without walking it, and
/// let a slot whose entries all share one deadline (the common case: jobs with the same cron
/// or interval) cascade whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct List {
    head: u32,
    tail: u32,
    earliest: u64,
    latest: u64,
    bounds_known: bool,
}

// Indices come from the wheel's own lists and maps, never from callers; a bad one is a wheel
// bug, so plain indexing (which panics) is the right check.
impl List {
    const EMPTY: List = List { head: NIL, tail: NIL, earliest: 0, latest: 0, bounds_known: false };

    #[inline]
    fn is_empty(&self) -> bool {
        self.head == NIL
    }

    fn push_back(&mut self, entries: &mut [Entry], idx: u32) {
        let tail = self.tail;
        let entry = &mut entries[idx as usize];
        entry.prev = tail;
        entry.next = NIL;
        let deadline = entry.deadline;
        if tail == NIL {
            *self = List { head: idx, tail: idx, earliest: deadline, latest: deadline, bounds_known: true };
            return;
        }
        entries[tail as usize].next = idx;
        self.tail = idx;
        self.earliest = self.earliest.min(deadline);
        self.latest = self.latest.max(deadline);
    }

    fn unlink(&mut self, entries: &mut [Entry], idx: u32) {
        let entry = &entries[idx as usize];
        let (prev, next, deadline) = (entry.prev, entry.next, entry.deadline);
        // In a uniform list every remaining entry still has the one deadline.
        if (deadline == self.earliest || deadline == self.latest) && self.earliest != self.latest {
            self.bounds_known = false;
        }
        if prev == NIL {
            debug_assert!(self.head == idx, "entry {idx} has no prev but list head is {}", self.head);
            self.head = next;
        } else {
            entries[prev as usize].next = next;
        }
        if next == NIL {
            debug_assert!(self.tail == idx, "entry {idx} has no next but list tail is {}", self.tail);
            self.tail = prev;
        } else {
            entries[next as usize].prev = prev;
        }
    }

    /// Moves all of `other` to the end of this list.
    fn append(&mut self, entries: &mut [Entry], other: List) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other;
            return;
        }
        entries[self.tail as usize].next = other.head;
        entries[other.head as usize].prev = self.tail;
        self.tail = other.tail;
        self.earliest = self.earliest.min(other.earliest);
        self.latest = self.latest.max(other.latest);
        self.bounds_known &= other.bounds_known;
    }

    /// The deadline every entry shares, when that is known.
    #[inline]
    fn uniform_deadline(&self) -> Option<u64> {
        (self.bounds_known && !self.is_empty() && self.earliest == self.latest).then_some(self.earliest)
    }

    fn earliest_deadline(&self, entries: &[Entry]) -> Option<u64> {
        if self.is_empty() {
            return None;
        }
        if self.bounds_known {
            return Some(self.earliest);
        }
        let mut earliest = u64::MAX;
        let mut cur = self.head;
        while cur != NIL {
            let entry = &entries[cur as usize];
            earliest = earliest.min(entry.deadline);
            cur = entry.next;
        }
        Some(earliest)
    }
}

/// Entries stored by index so that lists can link them with `u32`s and re-arming never moves them.
struct Slab<S> {
    entries: Vec<Entry>,
    /// `schedules[i]` belongs to `entries[i]`; `None` exactly when that cell is vacant.
    schedules: Vec<Option<S>>,
    free_head: u32,
}

impl<S> Slab<S> {
    #[inline]
    fn at(&self, idx: u32) -> &Entry {
        &self.entries[idx as usize]
    }

    #[inline]
    fn at_mut(&mut self, idx: u32) -> &mut Entry {
        &mut self.entries[idx as usize]
    }

    /// A detached entry, or `None` when `NIL` indices are exhausted (2^32 - 1 entries).
    fn alloc(&mut self, job_id: u64, schedule_index: u32, schedule: S, deadline: u64) -> Option<u32> {
        let entry = Entry {
            deadline,
            job_id,
            schedule_index,
            state: State::Detached,
            prev: NIL,
            next: NIL,
            job_prev: NIL,
            job_next: NIL,
            burst_count: 0,
            burst_seq: 0,
        };
        if self.free_head != NIL {
            let idx = self.free_head;
            let cell = self.at_mut(idx);
            debug_assert!(cell.state == State::Vacant, "free list cell {idx} is {:?}", cell.state);
            let next_free = cell.next;
            *cell = entry;
            self.free_head = next_free;
            self.set_schedule(idx, Some(schedule));
            return Some(idx);
        }
        let idx = u32::try_from(self.entries.len()).ok().filter(|&idx| idx != NIL)?;
        self.entries.push(entry);
        self.schedules.push(Some(schedule));
        Some(idx)
    }

    /// Room for `additional` more entries without reallocating (free cells count).
    fn reserve(&mut self, additional: usize) {
        self.entries.reserve(additional);
        self.schedules.reserve(additional);
    }

    /// Frees a cell that is in no timing list and no job list.
    fn release(&mut self, idx: u32) {
        let free_head = self.free_head;
        let cell = self.at_mut(idx);
        debug_assert!(cell.state == State::Detached, "releasing entry {idx} that is {:?}", cell.state);
        cell.state = State::Vacant;
        cell.next = free_head;
        self.free_head = idx;
        self.set_schedule(idx, None);
    }

    #[inline]
    fn schedule(&self, idx: u32) -> Option<&S> {
        self.schedules.get(idx as usize).and_then(Option::as_ref)
    }

    fn set_schedule(&mut self, idx: u32, schedule: Option<S>) {
        if let Some(cell) = self.schedules.get_mut(idx as usize) {
            *cell = schedule;
        } else {
            debug_assert!(false, "no schedule cell for entry {idx}");
        }
    }
}

struct Level {
    /// Bit `s` is set exactly when `slots[s]` is non-empty.
    occupied: u64,
    slots: [List; SLOTS_PER_LEVEL],
}

impl Level {
    const EMPTY: Level = Level { occupied: 0, slots: [List::EMPTY; SLOTS_PER_LEVEL] };

    fn push_back(&mut self, entries: &mut [Entry], slot: usize, idx: u32) {
        self.slots[slot].push_back(entries, idx);
        self.occupied |= 1 << slot;
    }

    fn unlink(&mut self, entries: &mut [Entry], slot: usize, idx: u32) {
        let list = &mut self.slots[slot];
        list.unlink(entries, idx);
        if list.is_empty() {
            self.occupied &= !(1 << slot);
        }
    }

    fn append(&mut self, entries: &mut [Entry], slot: usize, other: List) {
        self.slots[slot].append(entries, other);
        if !other.is_empty() {
            self.occupied |= 1 << slot;
        }
    }

    fn take(&mut self, slot: usize) -> List {
        self.occupied &= !(1 << slot);
        std::mem::replace(&mut self.slots[slot], List::EMPTY)
    }
}

/// An occupied slot and the tick it starts at.
#[derive(Debug, Clone, Copy)]
struct Expiration {
    level: usize,
    slot: usize,
    start: u64,
}

/// Hasher for the integer keys of the index maps: one folded 64x64->128 multiply per word, so
/// both the low bits (bucket) and the high bits (control byte) depend on every input bit. Job ids
/// are not attacker-chosen in bulk, so no per-process seed is needed.
#[derive(Clone, Copy)]
struct KeyHasher(u64);

const HASH_SEED: u64 = 0x243F_6A88_85A3_08D3;
const HASH_MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

impl Default for KeyHasher {
    fn default() -> Self {
        KeyHasher(HASH_SEED)
    }
}

impl KeyHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        let product = u128::from(self.0 ^ word) * u128::from(HASH_MULTIPLIER);
        self.0 = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (dst, src) in word.iter_mut().zip(chunk) {
                *dst = *src;
            }
            self.mix(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

type KeyMap<K> = HashMap<K, u32, BuildHasherDefault<KeyHasher>>;

/// `earliest` cache values besides a tick. Deadlines at these two ticks (`i64::MAX - 1` and
/// `i64::MAX` ms) are simply never cached.
const EARLIEST_UNKNOWN: u64 = u64::MAX;
const EARLIEST_NONE: u64 = u64::MAX - 1;

#[inline]
fn encode_earliest(earliest: Option<u64>) -> u64 {
    match earliest {
        None => EARLIEST_NONE,
        Some(tick) if tick < EARLIEST_NONE => tick,
        Some(_) => EARLIEST_UNKNOWN,
    }
}

/// The answer of a schedule, if it really is after `after_ms`. A schedule answering an instant
/// at or before the one asked about would fire forever without time passing; it is treated as
/// finished instead.
#[inline]
fn strictly_after(next: Option<i64>, after_ms: i64) -> Option<i64> {
    next.filter(|&next| next > after_ms)
}

/// `schedule.next_fire_after_ms(after_ms)`, answered from `memo` when the same shared rule was
/// just asked about the same instant (the entries of one slot fire at one instant).
#[inline]
fn next_after_memo<S: NextFire>(
    memo: &mut Option<(usize, i64, Option<i64>)>,
    schedule: &S,
    after_ms: i64,
) -> Option<i64> {
    let Some(rule) = schedule.rule_id() else {
        return schedule.next_fire_after_ms(after_ms);
    };
    if let Some((memo_rule, memo_after, answer)) = *memo {
        if memo_rule == rule && memo_after == after_ms {
            return answer;
        }
    }
    let answer = schedule.next_fire_after_ms(after_ms);
    *memo = Some((rule, after_ms, answer));
    answer
}

/// Hierarchical timing wheel of `(job_id, schedule_index)` entries; see the module docs.
pub struct Wheel<S> {
    /// Last processed tick (invariant 1).
    elapsed: u64,
    levels: [Level; LEVELS],
    due: List,
    overflow: List,
    slab: Slab<S>,
    index: KeyMap<(u64, u32)>,
    /// Head of each job's list of entries, threaded through `Entry::{job_prev, job_next}`.
    jobs: KeyMap<u64>,
    catchup_limit: u32,
    /// Numbers advances so that per-entry burst counters reset lazily.
    advance_seq: u64,
    /// Earliest deadline held, `EARLIEST_UNKNOWN`, or `EARLIEST_NONE`. Atomic only so that
    /// `next_deadline(&self)` may fill it while the wheel stays `Sync`; writers through `&self`
    /// all compute the same value, so relaxed ordering is enough.
    earliest: AtomicU64,
    /// Scratch heap for the due list, kept to reuse its allocation.
    due_heap: BinaryHeap<Reverse<(u64, u32)>>,
    /// The last re-arm of a shared rule in this advance: `(rule_id, after_ms, answer)`. Cleared
    /// at every advance, so a rule freed in between can never be mistaken for a new one.
    rearm_memo: Option<(usize, i64, Option<i64>)>,
}

impl<S> fmt::Debug for Wheel<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("elapsed_ms", &ms_of(self.elapsed))
            .field("len", &self.index.len())
            .field("catchup_limit", &self.catchup_limit)
            .finish_non_exhaustive()
    }
}

impl<S: NextFire> Wheel<S> {
    /// An empty wheel that has processed every instant up to and including `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Self::with_catchup_limit(now_ms, DEFAULT_CATCHUP_LIMIT)
    }

    /// Like [`Wheel::new`] with at most `limit` fires per entry per advance (a limit of 0 is
    /// taken as 1: an entry always reports at least the fire that was due).
    pub fn with_catchup_limit(now_ms: i64, limit: u32) -> Self {
        Wheel {
            elapsed: tick_of(now_ms),
            levels: [Level::EMPTY; LEVELS],
            due: List::EMPTY,
            overflow: List::EMPTY,
            slab: Slab { schedules: Vec::new(), entries: Vec::new(), free_head: NIL },
            index: KeyMap::default(),
            jobs: KeyMap::default(),
            catchup_limit: limit.max(1),
            advance_seq: 0,
            earliest: AtomicU64::new(EARLIEST_NONE),
            due_heap: BinaryHeap::new(),
            rearm_memo: None,
        }
    }

    /// Number of armed entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The last instant processed: the `now_ms` of the last advance, or of construction.
    pub fn elapsed_ms(&self) -> i64 {
        ms_of(self.elapsed)
    }

    /// Arms `(job_id, schedule_index)` at `schedule.next_fire_after_ms(after_ms)`, replacing an
    /// existing entry with that key. Returns the deadline, or `None` if the schedule never fires
    /// again: then nothing is stored and an existing entry with that key is removed.
    pub fn insert(&mut self, job_id: u64, schedule_index: u32, schedule: S, after_ms: i64) -> Option<i64> {
        let deadline = schedule.next_fire_after_ms(after_ms);
        self.arm_or_remove(job_id, schedule_index, schedule, deadline)
    }

    /// Arms at `deadline`, or removes the key when there is none (or the slab is full); returns
    /// the deadline armed.
    fn arm_or_remove(
        &mut self,
        job_id: u64,
        schedule_index: u32,
        schedule: S,
        deadline: Option<i64>,
    ) -> Option<i64> {
        match deadline {
            Some(deadline_ms) if self.arm(job_id, schedule_index, schedule, deadline_ms) => Some(deadline_ms),
            _ => {
                self.remove(job_id, schedule_index);
                None
            }
        }
    }

    /// [`Wheel::insert`] for a batch, all armed after one instant; returns the earliest deadline
    /// armed. Entries sharing a rule ([`NextFire::rule_id`]) ask it once: registering 100k jobs
    /// over 1,440 expressions makes 1,440 searches.
    pub fn insert_many(
        &mut self,
        entries: impl IntoIterator<Item = (u64, u32, S)>,
        after_ms: i64,
    ) -> Option<i64> {
        let entries = entries.into_iter();
        self.reserve(entries.size_hint().0);
        let mut answers: HashMap<usize, Option<i64>, BuildHasherDefault<KeyHasher>> = HashMap::default();
        let mut earliest: Option<i64> = None;
        for (job_id, schedule_index, schedule) in entries {
            let deadline = match schedule.rule_id() {
                Some(rule) => *answers.entry(rule).or_insert_with(|| schedule.next_fire_after_ms(after_ms)),
                None => schedule.next_fire_after_ms(after_ms),
            };
            if let Some(deadline_ms) = self.arm_or_remove(job_id, schedule_index, schedule, deadline) {
                earliest = Some(earliest.map_or(deadline_ms, |earliest| earliest.min(deadline_ms)));
            }
        }
        earliest
    }

    /// Arms `(job_id, schedule_index)` at an explicit deadline (restoring persisted state,
    /// catch-up), replacing an existing entry with that key; later re-arms ask the schedule. A
    /// deadline at or before the last advance fires at the next one.
    pub fn insert_at(&mut self, job_id: u64, schedule_index: u32, schedule: S, deadline_ms: i64) {
        self.arm(job_id, schedule_index, schedule, deadline_ms);
    }

    /// Removes one entry. O(1).
    pub fn remove(&mut self, job_id: u64, schedule_index: u32) -> bool {
        let Some(idx) = self.index.remove(&(job_id, schedule_index)) else {
            return false;
        };
        self.forget_deadline(self.slab.at(idx).deadline);
        self.unlink_place(idx);
        self.unlink_job(idx);
        self.slab.release(idx);
        true
    }

    /// Removes every entry of `job_id`; returns how many there were.
    pub fn remove_job(&mut self, job_id: u64) -> usize {
        let Some(mut cur) = self.jobs.remove(&job_id) else {
            return 0;
        };
        let mut removed = 0;
        while cur != NIL {
            let entry = self.slab.at(cur);
            let (next, schedule_index, deadline) = (entry.job_next, entry.schedule_index, entry.deadline);
            debug_assert!(
                entry.job_id == job_id,
                "entry {cur} of job {} in job {job_id}'s list",
                entry.job_id
            );
            self.index.remove(&(job_id, schedule_index));
            self.forget_deadline(deadline);
            self.unlink_place(cur);
            self.slab.release(cur);
            removed += 1;
            cur = next;
        }
        removed
    }

    /// Moves an entry to a new deadline, keeping its schedule. O(1). `false` if absent.
    pub fn reschedule(&mut self, job_id: u64, schedule_index: u32, deadline_ms: i64) -> bool {
        let Some(&idx) = self.index.get(&(job_id, schedule_index)) else {
            return false;
        };
        self.forget_deadline(self.slab.at(idx).deadline);
        self.unlink_place(idx);
        let deadline = tick_of(deadline_ms);
        self.slab.at_mut(idx).deadline = deadline;
        self.place(idx);
        self.note_deadline(deadline);
        true
    }

    pub fn deadline_of(&self, job_id: u64, schedule_index: u32) -> Option<i64> {
        let &idx = self.index.get(&(job_id, schedule_index))?;
        Some(ms_of(self.slab.at(idx).deadline))
    }

    /// The earliest deadline held: the due list's, else the earliest occupied slot's, else the
    /// overflow list's earliest, each kept by its list; cached until a change.
    pub fn next_deadline(&self) -> Option<i64> {
        match self.earliest.load(Ordering::Relaxed) {
            EARLIEST_NONE => return None,
            EARLIEST_UNKNOWN => {}
            tick => return Some(ms_of(tick)),
        }
        let earliest = self.compute_earliest();
        self.earliest.store(encode_earliest(earliest), Ordering::Relaxed);
        earliest.map(ms_of)
    }

    /// Appends every fire due at or before `now_ms` to `out`, in non-decreasing `scheduled_ms`
    /// order, re-arming each entry from the instant it fired (so an advance that comes late
    /// reports each missed instant, oldest first). An entry producing more than the catch-up
    /// limit in one advance is re-armed strictly after `now_ms`, and its last reported fire has
    /// `truncated` set. Entries whose schedule ends are dropped.
    ///
    /// # Panics
    /// If `now_ms` is before the last advance's (or construction's) `now_ms`.
    pub fn advance(&mut self, now_ms: i64, out: &mut Vec<Fire>) {
        let now = tick_of(now_ms);
        assert!(
            now >= self.elapsed,
            "Wheel::advance: now_ms {now_ms} is before the instant already processed ({})",
            ms_of(self.elapsed)
        );
        self.advance_seq = self.advance_seq.wrapping_add(1);
        self.rearm_memo = None;
        let reported_before = out.len();
        self.fire_due_list(now_ms, out);
        loop {
            if let Some(expiration) = self.next_expiration() {
                if expiration.start > now {
                    // Overflow entries are later still (invariant 5).
                    break;
                }
                self.process_slot(expiration, now_ms, out);
            } else if self.overflow.is_empty()
                || block_of(now) == block_of(self.elapsed)
                || !self.process_overflow(now, now_ms, out)
            {
                break;
            }
        }
        self.move_elapsed_to(now);
        if out.len() != reported_before {
            // Fired entries moved later or were dropped; re-arms never lower the minimum.
            *self.earliest.get_mut() = EARLIEST_UNKNOWN;
        }
    }

    /// Stores or replaces an entry and places it. `false` only when the slab is full.
    fn arm(&mut self, job_id: u64, schedule_index: u32, schedule: S, deadline_ms: i64) -> bool {
        let deadline = tick_of(deadline_ms);
        let (idx, replaced_schedule) = match self.index.entry((job_id, schedule_index)) {
            MapEntry::Occupied(occupied) => (*occupied.get(), Some(schedule)),
            MapEntry::Vacant(vacant) => match self.slab.alloc(job_id, schedule_index, schedule, deadline) {
                Some(idx) => {
                    vacant.insert(idx);
                    (idx, None)
                }
                None => return false,
            },
        };
        match replaced_schedule {
            Some(schedule) => {
                self.forget_deadline(self.slab.at(idx).deadline);
                self.unlink_place(idx);
                self.slab.set_schedule(idx, Some(schedule));
                let entry = self.slab.at_mut(idx);
                entry.deadline = deadline;
                entry.burst_count = 0;
            }
            None => self.link_job(idx),
        }
        self.place(idx);
        self.note_deadline(deadline);
        true
    }

    /// Room for `additional` more entries (one job each, at most) without growing any table:
    /// growing the slab and both maps step by step cost about a quarter of arming 20k jobs.
    fn reserve(&mut self, additional: usize) {
        self.slab.reserve(additional);
        self.index.reserve(additional);
        self.jobs.reserve(additional);
    }

    /// Links a detached entry where invariant 2 says it belongs.
    fn place(&mut self, idx: u32) {
        let entry = self.slab.at_mut(idx);
        debug_assert!(entry.state == State::Detached, "placing entry {idx} that is {:?}", entry.state);
        entry.state = State::Linked;
        let deadline = entry.deadline;
        let entries = &mut self.slab.entries;
        match locate(self.elapsed, deadline) {
            Location::Due => self.due.push_back(entries, idx),
            Location::Slot { level, slot } => self.levels[level].push_back(entries, slot, idx),
            Location::Overflow => self.overflow.push_back(entries, idx),
        }
    }

    /// Links a whole list whose entries all belong in `location`.
    fn place_all(&mut self, location: Location, list: List) {
        let entries = &mut self.slab.entries;
        match location {
            Location::Due => self.due.append(entries, list),
            Location::Slot { level, slot } => self.levels[level].append(entries, slot, list),
            Location::Overflow => self.overflow.append(entries, list),
        }
    }

    /// Unlinks an entry from its timing list, leaving it detached.
    fn unlink_place(&mut self, idx: u32) {
        let entry = self.slab.at_mut(idx);
        debug_assert!(entry.state == State::Linked, "unlinking entry {idx} that is {:?}", entry.state);
        entry.state = State::Detached;
        let deadline = entry.deadline;
        let entries = &mut self.slab.entries;
        match locate(self.elapsed, deadline) {
            Location::Due => self.due.unlink(entries, idx),
            Location::Slot { level, slot } => self.levels[level].unlink(entries, slot, idx),
            Location::Overflow => self.overflow.unlink(entries, idx),
        }
    }

    fn link_job(&mut self, idx: u32) {
        let job_id = self.slab.at(idx).job_id;
        let old_head = match self.jobs.entry(job_id) {
            MapEntry::Occupied(mut occupied) => std::mem::replace(occupied.get_mut(), idx),
            MapEntry::Vacant(vacant) => {
                vacant.insert(idx);
                NIL
            }
        };
        if old_head != NIL {
            self.slab.at_mut(old_head).job_prev = idx;
        }
        let entry = self.slab.at_mut(idx);
        entry.job_prev = NIL;
        entry.job_next = old_head;
    }

    fn unlink_job(&mut self, idx: u32) {
        let entry = self.slab.at(idx);
        let (job_id, prev, next) = (entry.job_id, entry.job_prev, entry.job_next);
        if prev != NIL {
            self.slab.at_mut(prev).job_next = next;
        } else if next == NIL {
            self.jobs.remove(&job_id);
        } else if let Some(head) = self.jobs.get_mut(&job_id) {
            debug_assert!(*head == idx, "entry {idx} has no job_prev but job {job_id}'s head is {head}");
            *head = next;
        }
        if next != NIL {
            self.slab.at_mut(next).job_prev = prev;
        }
    }

    /// Drops a detached entry whose schedule ended.
    fn discard_detached(&mut self, idx: u32) {
        let entry = self.slab.at(idx);
        self.index.remove(&(entry.job_id, entry.schedule_index));
        self.unlink_job(idx);
        self.slab.release(idx);
    }

    /// A deadline was added: it can only lower a known minimum.
    fn note_deadline(&mut self, deadline: u64) {
        let cache = self.earliest.get_mut();
        match *cache {
            EARLIEST_UNKNOWN => {}
            EARLIEST_NONE => *cache = encode_earliest(Some(deadline)),
            earliest => {
                if deadline < earliest {
                    *cache = encode_earliest(Some(deadline));
                }
            }
        }
    }

    /// A deadline is going away: the minimum is unknown if it was that deadline.
    fn forget_deadline(&mut self, deadline: u64) {
        let cache = self.earliest.get_mut();
        if *cache != EARLIEST_UNKNOWN && *cache != EARLIEST_NONE && deadline <= *cache {
            *cache = EARLIEST_UNKNOWN;
        }
    }

    fn compute_earliest(&self) -> Option<u64> {
        // Invariant 5: due < levels < overflow.
        let entries = &self.slab.entries;
        if !self.due.is_empty() {
            return self.due.earliest_deadline(entries);
        }
        match self.next_expiration() {
            // Invariant 4: a level-0 slot holds exactly its start.
            Some(Expiration { level: 0, start, .. }) => Some(start),
            Some(Expiration { level, slot, .. }) => self.levels[level].slots[slot].earliest_deadline(entries),
            None => self.overflow.earliest_deadline(entries),
        }
    }

    /// The first occupied slot of the lowest non-empty level (invariant 3: the earliest).
    fn next_expiration(&self) -> Option<Expiration> {
        self.levels.iter().enumerate().find_map(|(level, lvl)| {
            if lvl.occupied == 0 {
                return None;
            }
            let slot = lvl.occupied.trailing_zeros() as usize;
            debug_assert!(
                slot > slot_for(self.elapsed, level),
                "level {level}: occupied slot {slot} is not ahead of elapsed's digit {} (elapsed {}, occupied {:#018x})",
                slot_for(self.elapsed, level),
                ms_of(self.elapsed),
                lvl.occupied
            );
            Some(Expiration { level, slot, start: slot_start(self.elapsed, level, slot) })
        })
    }

    /// Reports a detached entry firing at `at` and re-arms it. Returns `true` if it stays armed
    /// (its new deadline is set; the caller places it) and `false` if it was dropped.
    fn fire(&mut self, idx: u32, at: u64, now_ms: i64, out: &mut Vec<Fire>) -> bool {
        let seq = self.advance_seq;
        let limit = self.catchup_limit;
        let entry = self.slab.at_mut(idx);
        debug_assert!(entry.state == State::Detached, "firing entry {idx} that is {:?}", entry.state);
        if entry.burst_seq != seq {
            entry.burst_seq = seq;
            entry.burst_count = 0;
        }
        entry.burst_count = entry.burst_count.saturating_add(1);
        let limit_reached = entry.burst_count >= limit;
        let at_ms = ms_of(at);
        let (next, truncated) = match self.slab.schedule(idx) {
            Some(schedule) => {
                match strictly_after(next_after_memo(&mut self.rearm_memo, schedule, at_ms), at_ms) {
                    Some(next) if next <= now_ms && limit_reached => {
                        (strictly_after(schedule.next_fire_after_ms(now_ms), now_ms), true)
                    }
                    next => (next, false),
                }
            }
            None => {
                debug_assert!(false, "firing vacant entry {idx}");
                (None, false)
            }
        };
        let entry = self.slab.at_mut(idx);
        out.push(Fire {
            job_id: entry.job_id,
            schedule_index: entry.schedule_index,
            scheduled_ms: at_ms,
            truncated,
        });
        match next {
            Some(next_ms) => {
                entry.deadline = tick_of(next_ms);
                true
            }
            None => {
                self.discard_detached(idx);
                false
            }
        }
    }

    /// Fires the due list (deadlines at or before `elapsed`) in deadline order. Re-arms still at
    /// or before `elapsed` go back into the heap so they interleave correctly; later ones go to
    /// the levels, which only hold deadlines after `elapsed`.
    fn fire_due_list(&mut self, now_ms: i64, out: &mut Vec<Fire>) {
        if self.due.is_empty() {
            return;
        }
        let mut heap = std::mem::take(&mut self.due_heap);
        let mut cur = std::mem::replace(&mut self.due, List::EMPTY).head;
        while cur != NIL {
            let entry = self.slab.at_mut(cur);
            entry.state = State::Detached;
            heap.push(Reverse((entry.deadline, cur)));
            cur = entry.next;
        }
        while let Some(Reverse((at, idx))) = heap.pop() {
            if self.fire(idx, at, now_ms, out) {
                let deadline = self.slab.at(idx).deadline;
                if deadline <= self.elapsed {
                    heap.push(Reverse((deadline, idx)));
                } else {
                    self.place(idx);
                }
            }
        }
        self.due_heap = heap;
    }

    /// Empties the earliest occupied slot, which starts at or before `now`: `elapsed` moves to
    /// its start, entries due exactly then fire, the rest cascade to lower levels.
    fn process_slot(&mut self, expiration: Expiration, now_ms: i64, out: &mut Vec<Fire>) {
        let Expiration { level, slot, start } = expiration;
        debug_assert!(
            start > self.elapsed,
            "slot {slot} of level {level} starts at {} but elapsed is {}",
            ms_of(start),
            ms_of(self.elapsed)
        );
        let list = self.levels[level].take(slot);
        self.elapsed = start;
        if let Some(deadline) = list.uniform_deadline().filter(|&deadline| deadline > start) {
            // One shared deadline means one destination: cascade the slot in O(1).
            self.place_all(locate(start, deadline), list);
            return;
        }
        let mut cur = list.head;
        while cur != NIL {
            let entry = self.slab.at_mut(cur);
            let next = entry.next;
            let deadline = entry.deadline;
            entry.state = State::Detached;
            debug_assert!(
                deadline >= start && deadline - start < slot_width(level),
                "entry {cur} with deadline {} sits in level {level} slot {slot} starting at {}",
                ms_of(deadline),
                ms_of(start)
            );
            // Lower levels are empty, so nothing is due before `start`: firing here keeps order.
            if deadline > start || self.fire(cur, start, now_ms, out) {
                self.place(cur);
            }
            cur = next;
        }
    }

    /// Called with the levels empty and `now` in a later block than `elapsed`. Jumps `elapsed`
    /// to the earliest overflow deadline if that is at or before `now`, fires the entries due
    /// then, and re-places the rest (those in the new block enter the levels). Returns `false`,
    /// changing nothing, when no overflow deadline is at or before `now`.
    fn process_overflow(&mut self, now: u64, now_ms: i64, out: &mut Vec<Fire>) -> bool {
        debug_assert!(
            self.levels.iter().all(|lvl| lvl.occupied == 0),
            "processing overflow at elapsed {} with occupied levels",
            ms_of(self.elapsed)
        );
        let Some(earliest) =
            self.overflow.earliest_deadline(&self.slab.entries).filter(|&earliest| earliest <= now)
        else {
            return false;
        };
        debug_assert!(
            earliest > self.elapsed,
            "overflow deadline {} is not after elapsed {}",
            ms_of(earliest),
            ms_of(self.elapsed)
        );
        self.elapsed = earliest;
        let mut cur = std::mem::replace(&mut self.overflow, List::EMPTY).head;
        while cur != NIL {
            let entry = self.slab.at_mut(cur);
            let next = entry.next;
            let deadline = entry.deadline;
            entry.state = State::Detached;
            if deadline > earliest || self.fire(cur, earliest, now_ms, out) {
                self.place(cur);
            }
            cur = next;
        }
        true
    }

    /// Ends an advance at `now`. Entering a new block brings that block's overflow entries into
    /// the levels; the levels are empty then, since every deadline of the old block is `<= now`.
    fn move_elapsed_to(&mut self, now: u64) {
        if now <= self.elapsed {
            return;
        }
        let crossed = block_of(now) != block_of(self.elapsed);
        self.elapsed = now;
        if !crossed {
            return;
        }
        debug_assert!(
            self.levels.iter().all(|lvl| lvl.occupied == 0),
            "crossing into block {} with occupied levels",
            block_of(now)
        );
        let mut cur = std::mem::replace(&mut self.overflow, List::EMPTY).head;
        while cur != NIL {
            let entry = self.slab.at_mut(cur);
            let next = entry.next;
            entry.state = State::Detached;
            debug_assert!(
                entry.deadline > now,
                "overflow entry {cur} due at {} left behind by advance to {}",
                ms_of(entry.deadline),
                ms_of(now)
            );
            self.place(cur);
            cur = next;
        }
    }
}

#[cfg(test)]
impl<S: NextFire> Wheel<S> {
    /// Walks a list, checking its links, and returns its members.
    fn walk(&self, list: List) -> Vec<u32> {
        let mut members = Vec::new();
        let mut prev = NIL;
        let mut cur = list.head;
        while cur != NIL {
            let entry = self.slab.at(cur);
            assert_eq!(entry.prev, prev, "entry {cur}: prev link");
            members.push(cur);
            prev = cur;
            cur = entry.next;
            assert!(members.len() <= self.slab.entries.len(), "cycle in list");
        }
        assert_eq!(list.tail, prev, "list tail");
        if list.bounds_known && !list.is_empty() {
            let deadlines = members.iter().map(|&idx| self.slab.at(idx).deadline);
            assert_eq!(Some(list.earliest), deadlines.clone().min(), "stale earliest of a list");
            assert_eq!(Some(list.latest), deadlines.max(), "stale latest of a list");
        }
        members
    }

    /// Whether entry `idx` waits in the overflow list.
    fn in_overflow(&self, idx: u32) -> bool {
        self.walk(self.overflow).contains(&idx)
    }

    /// Checks that `idx` is linked where `locate` says.
    fn check_located(&self, idx: u32, location: Location) {
        let entry = self.slab.at(idx);
        assert_eq!(entry.state, State::Linked, "entry {idx} in a list");
        assert_eq!(locate(self.elapsed, entry.deadline), location, "entry {idx} in the wrong list");
    }

    /// Checks every invariant of the module docs, the maps and the cache.
    fn check_invariants(&self) {
        let elapsed = self.elapsed;
        let mut placed = 0;
        for (level, lvl) in self.levels.iter().enumerate() {
            for (slot, list) in lvl.slots.iter().enumerate() {
                assert_eq!(
                    lvl.occupied >> slot & 1 == 1,
                    !list.is_empty(),
                    "occupied bit of level {level} slot {slot}"
                );
                for idx in self.walk(*list) {
                    self.check_located(idx, Location::Slot { level, slot });
                    assert!(self.slab.at(idx).deadline > elapsed, "level entry not after elapsed");
                    placed += 1;
                }
            }
        }
        for idx in self.walk(self.due) {
            self.check_located(idx, Location::Due);
            placed += 1;
        }
        for idx in self.walk(self.overflow) {
            self.check_located(idx, Location::Overflow);
            let entry = self.slab.at(idx);
            assert!(
                entry.deadline > elapsed && block_of(entry.deadline) > block_of(elapsed),
                "overflow entry in elapsed's block"
            );
            placed += 1;
        }
        assert_eq!(placed, self.index.len(), "entries placed vs indexed");
        for (&(job_id, schedule_index), &idx) in &self.index {
            let entry = self.slab.at(idx);
            assert_eq!((entry.job_id, entry.schedule_index), (job_id, schedule_index));
            assert!(self.slab.schedule(idx).is_some());
        }
        let mut in_jobs = 0;
        for (&job_id, &head) in &self.jobs {
            let mut prev = NIL;
            let mut cur = head;
            assert_ne!(head, NIL, "empty job list kept for {job_id}");
            while cur != NIL {
                let entry = self.slab.at(cur);
                assert_eq!(entry.job_id, job_id);
                assert_eq!(entry.job_prev, prev);
                assert_eq!(self.index.get(&(job_id, entry.schedule_index)), Some(&cur));
                in_jobs += 1;
                prev = cur;
                cur = entry.job_next;
            }
        }
        assert_eq!(in_jobs, self.index.len(), "entries in job lists vs indexed");
        assert_eq!(self.slab.schedules.len(), self.slab.entries.len());
        for (entry, schedule) in self.slab.entries.iter().zip(&self.slab.schedules) {
            assert_eq!(entry.state == State::Vacant, schedule.is_none(), "schedule of a vacant cell");
        }
        let vacant = self.slab.entries.iter().filter(|entry| entry.state == State::Vacant).count();
        assert_eq!(vacant + self.index.len(), self.slab.entries.len(), "vacant + live = slab size");
        match self.earliest.load(Ordering::Relaxed) {
            EARLIEST_UNKNOWN => {}
            cached => assert_eq!(cached, encode_earliest(self.compute_earliest()), "stale earliest cache"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Fires at `anchor + k * period` for every integer `k`, up to `until` when given.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Every {
        anchor: i64,
        period: i64,
        until: Option<i64>,
    }

    impl Every {
        fn new(anchor: i64, period: i64) -> Self {
            Every { anchor, period, until: None }
        }
    }

    impl NextFire for Every {
        fn next_fire_after_ms(&self, after_ms: i64) -> Option<i64> {
            let (anchor, period) = (i128::from(self.anchor), i128::from(self.period));
            let steps = (i128::from(after_ms) - anchor).div_euclid(period) + 1;
            let next = i64::try_from(anchor + steps * period).ok()?;
            match self.until {
                Some(until) if next > until => None,
                _ => Some(next),
            }
        }
    }

    /// Answers the instant it was asked about: breaks the "strictly after" contract.
    #[derive(Debug, Clone, Copy)]
    struct Stuck;

    impl NextFire for Stuck {
        fn next_fire_after_ms(&self, after_ms: i64) -> Option<i64> {
            Some(after_ms)
        }
    }

    const T0: i64 = 1_700_000_000_000;

    fn advance<S: NextFire>(wheel: &mut Wheel<S>, now_ms: i64) -> Vec<Fire> {
        let mut out = Vec::new();
        wheel.advance(now_ms, &mut out);
        wheel.check_invariants();
        out
    }

    fn fire(job_id: u64, schedule_index: u32, scheduled_ms: i64) -> Fire {
        Fire { job_id, schedule_index, scheduled_ms, truncated: false }
    }

    fn times(fires: &[Fire]) -> Vec<i64> {
        fires.iter().map(|fire| fire.scheduled_ms).collect()
    }

    #[test]
    fn constants_are_derived_consistently() {
        assert_eq!(SLOTS_PER_LEVEL, 64);
        assert_eq!(level_span(LEVELS - 1), BLOCK_SPAN_MS);
        for level in 0..LEVELS {
            assert_eq!(level_span(level), slot_width(level) * SLOTS_PER_LEVEL as u64);
        }
        assert_eq!(ms_of(tick_of(i64::MIN)), i64::MIN);
        assert_eq!(ms_of(tick_of(-1)), -1);
        assert!(tick_of(-1) < tick_of(0) && tick_of(i64::MAX) == u64::MAX);
        assert_eq!(level_for(100, 100), Some(0));
        assert_eq!(level_for(100, 127), Some(0));
        assert_eq!(level_for(100, 128), Some(1));
        assert_eq!(level_for(0, BLOCK_SPAN_MS - 1), Some(LEVELS - 1));
        assert_eq!(level_for(BLOCK_SPAN_MS - 1, BLOCK_SPAN_MS), None);
    }

    #[test]
    fn hot_entries_stay_small() {
        // Cascades walk these; keep them within a cache line.
        assert!(std::mem::size_of::<Entry>() <= 56, "Entry is {} bytes", std::mem::size_of::<Entry>());
    }

    #[test]
    fn insert_returns_deadline_and_fires_on_time() {
        let mut wheel = Wheel::new(T0);
        assert!(wheel.is_empty());
        assert_eq!(wheel.insert(1, 0, Every::new(T0, 1000), T0), Some(T0 + 1000));
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 1000));
        assert_eq!(wheel.deadline_of(1, 1), None);
        wheel.check_invariants();
        assert!(advance(&mut wheel, T0 + 999).is_empty());
        assert_eq!(advance(&mut wheel, T0 + 1000), vec![fire(1, 0, T0 + 1000)]);
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 2000));
        assert!(
            advance(&mut wheel, T0 + 1000).is_empty(),
            "advancing to the same instant again fires nothing"
        );
        assert_eq!(advance(&mut wheel, T0 + 2500), vec![fire(1, 0, T0 + 2000)]);
        assert_eq!(wheel.elapsed_ms(), T0 + 2500);
    }

    #[test]
    fn insert_replaces_existing_key() {
        let mut wheel = Wheel::new(T0);
        wheel.insert(7, 2, Every::new(T0, 50), T0);
        wheel.insert(7, 2, Every::new(T0, 80), T0);
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.deadline_of(7, 2), Some(T0 + 80));
        wheel.check_invariants();
        assert_eq!(times(&advance(&mut wheel, T0 + 200)), vec![T0 + 80, T0 + 160]);
        // An explicit deadline already passed fires at the next advance.
        wheel.insert_at(7, 2, Every::new(T0, 1000), T0 + 5);
        assert_eq!(wheel.len(), 1);
        assert_eq!(times(&advance(&mut wheel, T0 + 2000)), vec![T0 + 5, T0 + 1000, T0 + 2000]);
    }

    #[test]
    fn insert_of_ended_schedule_stores_nothing_and_removes_old() {
        let mut wheel = Wheel::new(T0);
        let ended = Every { anchor: T0, period: 10, until: Some(T0 - 1) };
        assert_eq!(wheel.insert(1, 0, ended, T0), None);
        assert!(wheel.is_empty());
        wheel.insert(1, 0, Every::new(T0, 10), T0);
        assert_eq!(wheel.insert(1, 0, ended, T0), None);
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline(), None);
        wheel.check_invariants();
    }

    #[test]
    fn remove_and_remove_job() {
        let mut wheel = Wheel::new(T0);
        for job in 0..4u64 {
            for index in 0..3u32 {
                wheel.insert(job, index, Every::new(T0, 100 + i64::from(index)), T0);
            }
        }
        wheel.insert_at(9, 0, Every::new(T0, 1), T0 - 5);
        assert_eq!(wheel.len(), 13);
        assert!(wheel.remove(2, 1));
        assert!(!wheel.remove(2, 1));
        assert!(!wheel.remove(99, 0));
        wheel.check_invariants();
        assert_eq!(wheel.remove_job(2), 2);
        assert_eq!(wheel.remove_job(2), 0);
        assert_eq!(wheel.remove_job(9), 1);
        assert_eq!(wheel.len(), 9);
        wheel.check_invariants();
        let fired = advance(&mut wheel, T0 + 100);
        assert_eq!(fired.len(), 3);
        assert!(fired.iter().all(|fire| fire.job_id != 2 && fire.schedule_index == 0));
        assert_eq!(wheel.remove_job(0), 3);
        assert_eq!(wheel.len(), 6);
        // Freed cells are reused.
        let slab_size = wheel.slab.entries.len();
        wheel.insert(50, 0, Every::new(T0, 100), T0 + 100);
        assert_eq!(wheel.slab.entries.len(), slab_size);
        wheel.check_invariants();
    }

    #[test]
    fn reschedule_moves_an_entry() {
        let mut wheel = Wheel::new(T0);
        wheel.insert(1, 0, Every::new(T0, 1000), T0);
        assert!(!wheel.reschedule(2, 0, T0 + 10));
        assert!(wheel.reschedule(1, 0, T0 + 10));
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 10));
        assert_eq!(wheel.next_deadline(), Some(T0 + 10));
        wheel.check_invariants();
        assert_eq!(advance(&mut wheel, T0 + 10), vec![fire(1, 0, T0 + 10)]);
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 1000), "re-arms ask the schedule again");
        assert!(wheel.reschedule(1, 0, T0 + 3 * BLOCK_SPAN_MS as i64));
        assert_eq!(wheel.next_deadline(), Some(T0 + 3 * BLOCK_SPAN_MS as i64));
        assert!(wheel.reschedule(1, 0, T0 - 50));
        wheel.check_invariants();
        assert_eq!(advance(&mut wheel, T0 + 10), vec![fire(1, 0, T0 - 50), fire(1, 0, T0)]);
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 1000));
    }

    #[test]
    fn next_deadline_tracks_the_earliest_entry() {
        let mut wheel = Wheel::new(T0);
        assert_eq!(wheel.next_deadline(), None);
        wheel.insert_at(1, 0, Every::new(T0, 1000), T0 + 5000);
        assert_eq!(wheel.next_deadline(), Some(T0 + 5000));
        wheel.insert_at(2, 0, Every::new(T0, 1000), T0 + 70);
        assert_eq!(wheel.next_deadline(), Some(T0 + 70));
        wheel.insert_at(3, 0, Every::new(T0, 1000), T0 + 3);
        assert_eq!(wheel.next_deadline(), Some(T0 + 3));
        wheel.check_invariants();
        wheel.remove(3, 0);
        assert_eq!(wheel.next_deadline(), Some(T0 + 70));
        assert_eq!(times(&advance(&mut wheel, T0 + 70)), vec![T0 + 70]);
        assert_eq!(wheel.next_deadline(), Some(T0 + 1000));
        wheel.insert_at(4, 0, Every::new(T0, 1000), T0 - 1);
        assert_eq!(wheel.next_deadline(), Some(T0 - 1), "past-due entries count");
        wheel.check_invariants();
        advance(&mut wheel, T0 + 70);
        assert_eq!(wheel.next_deadline(), Some(T0 + 1000));
        wheel.remove_job(1);
        wheel.remove_job(2);
        wheel.remove_job(4);
        assert_eq!(wheel.next_deadline(), None);
        let far = T0 + 10 * BLOCK_SPAN_MS as i64;
        wheel.insert_at(5, 0, Every::new(T0, 1000), far);
        assert_eq!(wheel.next_deadline(), Some(far), "overflow entries count");
        wheel.check_invariants();
    }

    #[test]
    fn same_millisecond_fires_every_entry_once() {
        let mut wheel = Wheel::new(T0);
        for job in 0..5000u64 {
            wheel.insert(job, 0, Every::new(T0, 1000), T0);
        }
        for second in 1..=3 {
            let fired = advance(&mut wheel, T0 + second * 1000);
            assert_eq!(fired.len(), 5000);
            assert!(fired.iter().all(|fire| fire.scheduled_ms == T0 + second * 1000 && !fire.truncated));
            assert_eq!(wheel.next_deadline(), Some(T0 + (second + 1) * 1000));
        }
    }

    #[test]
    fn uniform_slots_cascade_whole_and_mixed_slots_split() {
        let mut wheel = Wheel::new(T0);
        let at = T0 + 3_000_007;
        for job in 0..1000u64 {
            wheel.insert_at(job, 0, Every::new(at, 60_000), at);
        }
        // A removal keeps a uniform slot uniform.
        assert!(wheel.remove(500, 0));
        let Some(Expiration { level, slot, .. }) = wheel.next_expiration() else {
            panic!("nothing armed");
        };
        assert_eq!(wheel.levels[level].slots[slot].uniform_deadline(), Some(tick_of(at)));
        // A second deadline in the same top slot makes it mixed.
        wheel.insert_at(2000, 0, Every::new(at, 60_000), at + 1);
        wheel.check_invariants();
        assert_eq!(wheel.levels[level].slots[slot].uniform_deadline(), None);
        assert_eq!(wheel.next_deadline(), Some(at));
        assert!(advance(&mut wheel, at - 1).is_empty());
        let fired = advance(&mut wheel, at + 1);
        assert_eq!(fired.len(), 1000);
        assert!(fired[..999].iter().all(|fire| fire.scheduled_ms == at));
        assert_eq!(fired[999], fire(2000, 0, at + 1));
        assert_eq!(wheel.next_deadline(), Some(at + 60_000));
    }

    #[test]
    fn far_future_deadline_waits_in_overflow() {
        let mut wheel = Wheel::new(T0);
        let far = T0 + 5 * BLOCK_SPAN_MS as i64 + 12_345;
        wheel.insert_at(1, 0, Every::new(far, BLOCK_SPAN_MS as i64 * 2), far);
        assert!(wheel.in_overflow(0));
        // Step through in big strides that do not reach it.
        let mut now = T0;
        while now + (BLOCK_SPAN_MS as i64) / 3 < far {
            now += (BLOCK_SPAN_MS as i64) / 3;
            assert!(advance(&mut wheel, now).is_empty());
        }
        assert!(advance(&mut wheel, far - 1).is_empty());
        assert!(!wheel.in_overflow(0), "the block of its deadline has been entered");
        assert_eq!(advance(&mut wheel, far), vec![fire(1, 0, far)]);
        // One jump straight over several blocks fires it and the next instant in order.
        let next = far + 2 * BLOCK_SPAN_MS as i64;
        let fired = advance(&mut wheel, next + 1);
        assert_eq!(fired, vec![fire(1, 0, next)]);
    }

    #[test]
    fn jump_over_many_blocks_fires_overflow_in_order() {
        let mut wheel = Wheel::with_catchup_limit(T0, 2);
        let block = BLOCK_SPAN_MS as i64;
        wheel.insert_at(1, 0, Every::new(T0 + 7, 3 * block), T0 + 7 + 3 * block);
        wheel.insert_at(2, 0, Every::new(T0 + 9, 2 * block), T0 + 9 + 2 * block);
        wheel.insert_at(3, 0, Every::new(T0, 1), T0 + 1);
        let fired = advance(&mut wheel, T0 + 7 * block);
        let truncated =
            |job_id, scheduled_ms| Fire { job_id, schedule_index: 0, scheduled_ms, truncated: true };
        assert_eq!(
            fired,
            vec![
                fire(3, 0, T0 + 1),
                truncated(3, T0 + 2),
                fire(2, 0, T0 + 9 + 2 * block),
                fire(1, 0, T0 + 7 + 3 * block),
                truncated(2, T0 + 9 + 4 * block),
                fire(1, 0, T0 + 7 + 6 * block),
            ]
        );
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 7 + 9 * block));
        assert_eq!(wheel.deadline_of(2, 0), Some(T0 + 9 + 8 * block));
        assert_eq!(wheel.deadline_of(3, 0), Some(T0 + 7 * block + 1));
        assert_eq!(wheel.next_deadline(), Some(T0 + 7 * block + 1));
    }

    #[test]
    fn deadline_just_across_a_block_boundary() {
        let boundary = ms_of(7 * BLOCK_SPAN_MS);
        let mut wheel = Wheel::new(boundary - 3);
        wheel.insert(1, 0, Every::new(boundary, 2), boundary - 3);
        assert_eq!(wheel.deadline_of(1, 0), Some(boundary - 2));
        wheel.insert_at(2, 0, Every::new(boundary, 1000), boundary);
        assert!(wheel.in_overflow(1));
        wheel.check_invariants();
        assert_eq!(times(&advance(&mut wheel, boundary - 1)), vec![boundary - 2]);
        let fired = advance(&mut wheel, boundary + 2);
        assert_eq!(times(&fired), vec![boundary, boundary, boundary + 2]);
        assert_eq!(wheel.next_deadline(), Some(boundary + 4));
    }

    #[test]
    fn past_deadlines_fire_at_the_next_advance() {
        let mut wheel = Wheel::new(T0);
        wheel.insert_at(1, 0, Every::new(T0, 1000), T0 - 5000);
        wheel.insert_at(2, 0, Every::new(T0 + 1, 1000), T0);
        wheel.check_invariants();
        let fired = advance(&mut wheel, T0);
        assert_eq!(times(&fired), vec![T0 - 5000, T0 - 4000, T0 - 3000, T0 - 2000, T0 - 1000, T0, T0]);
        assert_eq!(fired.iter().filter(|fire| fire.job_id == 2).count(), 1);
        // A deadline equal to the last advance's instant also waits for the next advance.
        wheel.insert_at(3, 0, Every::new(T0, 7), T0);
        assert_eq!(advance(&mut wheel, T0), vec![fire(3, 0, T0)]);
    }

    #[test]
    fn catch_up_reports_missed_instants_oldest_first() {
        let mut wheel = Wheel::new(T0);
        wheel.insert(1, 0, Every::new(T0, 3), T0);
        wheel.insert(2, 0, Every::new(T0, 5), T0);
        wheel.insert(3, 0, Every::new(T0, 100_000), T0);
        let fired = advance(&mut wheel, T0 + 30);
        assert!(fired.windows(2).all(|pair| pair[0].scheduled_ms <= pair[1].scheduled_ms));
        let of = |job| {
            fired
                .iter()
                .filter(|fire| fire.job_id == job)
                .map(|fire| fire.scheduled_ms - T0)
                .collect::<Vec<_>>()
        };
        assert_eq!(of(1), (1..=10).map(|k| 3 * k).collect::<Vec<_>>());
        assert_eq!(of(2), (1..=6).map(|k| 5 * k).collect::<Vec<_>>());
        assert!(of(3).is_empty());
        assert!(fired.iter().all(|fire| !fire.truncated));
    }

    #[test]
    fn catch_up_limit_truncates_and_rearms_after_now() {
        let mut wheel = Wheel::with_catchup_limit(T0, 4);
        wheel.insert(1, 0, Every::new(T0, 1), T0);
        wheel.insert(2, 0, Every::new(T0, 25), T0);
        let fired = advance(&mut wheel, T0 + 100);
        let mine: Vec<Fire> = fired.iter().copied().filter(|fire| fire.job_id == 1).collect();
        assert_eq!(times(&mine), vec![T0 + 1, T0 + 2, T0 + 3, T0 + 4]);
        assert_eq!(
            mine.iter().map(|fire| fire.truncated).collect::<Vec<_>>(),
            vec![false, false, false, true]
        );
        // Exactly four fires of job 2 fit the limit: no truncation.
        assert!(fired.iter().filter(|fire| fire.job_id == 2).all(|fire| !fire.truncated));
        assert_eq!(fired.iter().filter(|fire| fire.job_id == 2).count(), 4);
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 101));
        assert_eq!(wheel.deadline_of(2, 0), Some(T0 + 125));
        // The count starts over at each advance.
        assert_eq!(times(&advance(&mut wheel, T0 + 102)), vec![T0 + 101, T0 + 102]);
    }

    #[test]
    fn truncation_applies_to_past_due_entries() {
        let mut wheel = Wheel::with_catchup_limit(T0, 3);
        wheel.insert_at(1, 0, Every::new(T0, 10), T0 - 1000);
        let fired = advance(&mut wheel, T0 + 5);
        assert_eq!(times(&fired), vec![T0 - 1000, T0 - 990, T0 - 980]);
        assert!(fired[2].truncated);
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 10));
    }

    #[test]
    fn zero_catchup_limit_means_one() {
        let mut wheel = Wheel::with_catchup_limit(T0, 0);
        wheel.insert(1, 0, Every::new(T0, 10), T0);
        let fired = advance(&mut wheel, T0 + 35);
        assert_eq!(
            fired,
            vec![Fire { job_id: 1, schedule_index: 0, scheduled_ms: T0 + 10, truncated: true }]
        );
        assert_eq!(wheel.deadline_of(1, 0), Some(T0 + 40));
    }

    #[test]
    fn ended_schedules_are_dropped() {
        let mut wheel = Wheel::new(T0);
        wheel.insert(1, 0, Every { anchor: T0, period: 10, until: Some(T0 + 30) }, T0);
        wheel.insert(1, 1, Every::new(T0, 10), T0);
        let fired = advance(&mut wheel, T0 + 100);
        assert_eq!(fired.iter().filter(|fire| fire.schedule_index == 0).count(), 3);
        assert_eq!(wheel.len(), 1);
        assert_eq!(wheel.deadline_of(1, 0), None);
        assert_eq!(wheel.remove_job(1), 1);
        // Truncation re-arm that ends also drops the entry.
        let mut wheel = Wheel::with_catchup_limit(T0, 2);
        wheel.insert(1, 0, Every { anchor: T0, period: 10, until: Some(T0 + 50) }, T0);
        let fired = advance(&mut wheel, T0 + 60);
        assert_eq!(times(&fired), vec![T0 + 10, T0 + 20]);
        assert!(fired[1].truncated);
        assert!(wheel.is_empty());
        wheel.check_invariants();
    }

    #[test]
    fn schedule_that_does_not_move_forward_is_dropped() {
        let mut wheel = Wheel::new(T0);
        wheel.insert_at(1, 0, Stuck, T0 + 5);
        wheel.insert_at(2, 0, Stuck, T0 - 5);
        let fired = advance(&mut wheel, T0 + 10);
        assert_eq!(times(&fired), vec![T0 - 5, T0 + 5]);
        assert!(wheel.is_empty());
    }

    #[test]
    #[should_panic(expected = "before the instant already processed")]
    fn advancing_backwards_panics() {
        let mut wheel: Wheel<Every> = Wheel::new(T0);
        advance(&mut wheel, T0 + 10);
        advance(&mut wheel, T0 + 9);
    }

    #[test]
    fn extreme_instants() {
        let mut wheel = Wheel::with_catchup_limit(i64::MIN, 3);
        wheel.insert_at(1, 0, Every::new(0, 1), i64::MIN);
        wheel.insert_at(2, 0, Every::new(0, 7), i64::MAX);
        wheel.insert_at(3, 0, Every::new(0, 7), -1);
        assert_eq!(wheel.next_deadline(), Some(i64::MIN));
        wheel.check_invariants();
        assert_eq!(times(&advance(&mut wheel, i64::MIN + 1)), vec![i64::MIN, i64::MIN + 1]);
        assert_eq!(wheel.deadline_of(1, 0), Some(i64::MIN + 2));
        // Past i64::MAX the schedules end, so everything is dropped after its last fire.
        let fired = advance(&mut wheel, i64::MAX);
        assert_eq!(
            fired.iter().map(|fire| (fire.job_id, fire.scheduled_ms, fire.truncated)).collect::<Vec<_>>(),
            vec![
                (1, i64::MIN + 2, false),
                (1, i64::MIN + 3, false),
                (1, i64::MIN + 4, true),
                (3, -1, false),
                (3, 0, false),
                (3, 7, true),
                (2, i64::MAX, false),
            ]
        );
        assert!(wheel.is_empty());
        assert_eq!(wheel.next_deadline(), None);
        assert!(advance(&mut wheel, i64::MAX).is_empty());
    }

    /// xorshift64*: small, deterministic, good enough to drive workloads.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }

        fn pick<T: Copy>(&mut self, items: &[T]) -> T {
            items[self.below(items.len() as u64) as usize]
        }
    }

    /// Brute-force reference: every entry with its schedule and deadline.
    struct Model {
        entries: BTreeMap<(u64, u32), (Every, i64)>,
        limit: u32,
    }

    impl Model {
        fn advance(&mut self, now_ms: i64) -> Vec<Fire> {
            let mut out = Vec::new();
            let mut ended = Vec::new();
            for (&(job_id, schedule_index), (schedule, deadline)) in &mut self.entries {
                let mut count = 0;
                while *deadline <= now_ms {
                    count += 1;
                    let mut next = strictly_after(schedule.next_fire_after_ms(*deadline), *deadline);
                    let mut truncated = false;
                    if count >= self.limit && next.is_some_and(|next| next <= now_ms) {
                        truncated = true;
                        next = strictly_after(schedule.next_fire_after_ms(now_ms), now_ms);
                    }
                    out.push(Fire { job_id, schedule_index, scheduled_ms: *deadline, truncated });
                    match next {
                        Some(next) => *deadline = next,
                        None => {
                            ended.push((job_id, schedule_index));
                            break;
                        }
                    }
                }
            }
            for key in ended {
                self.entries.remove(&key);
            }
            out
        }

        fn next_deadline(&self) -> Option<i64> {
            self.entries.values().map(|&(_, deadline)| deadline).min()
        }
    }

    fn sorted(mut fires: Vec<Fire>) -> Vec<Fire> {
        fires.sort_by_key(|fire| (fire.scheduled_ms, fire.job_id, fire.schedule_index, fire.truncated));
        fires
    }

    const PERIODS: [i64; 12] = [
        1,
        3,
        64,
        1000,
        4096,
        60_000,
        262_144,
        3_600_000,
        86_400_000,
        BLOCK_SPAN_MS as i64,
        BLOCK_SPAN_MS as i64 + 1,
        2 * BLOCK_SPAN_MS as i64 + 12_345,
    ];

    /// An offset from now: mostly near, sometimes far, sometimes past.
    fn offset(rng: &mut Rng) -> i64 {
        match rng.below(10) {
            0 => -(rng.below(100_000) as i64),
            1..=4 => rng.below(200) as i64,
            5..=7 => rng.below(10_000_000) as i64,
            8 => rng.below(4 * BLOCK_SPAN_MS) as i64,
            _ => rng.below(1 << 42) as i64,
        }
    }

    fn stride(rng: &mut Rng) -> i64 {
        match rng.below(20) {
            0 => 0,
            1..=8 => rng.below(100) as i64,
            9..=14 => rng.below(100_000) as i64,
            15..=17 => rng.below(100_000_000) as i64,
            18 => rng.below(BLOCK_SPAN_MS) as i64,
            _ => rng.below(3 * BLOCK_SPAN_MS) as i64,
        }
    }

    fn run_workload(seed: u64, start_ms: i64, ops: usize) {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let limit = rng.pick(&[1, 2, 5, 17, 64]);
        let keys = 1 + rng.below(60);
        let mut wheel = Wheel::with_catchup_limit(start_ms, limit);
        let mut model = Model { entries: BTreeMap::new(), limit };
        let mut now = start_ms;
        let mut out = Vec::new();
        for step in 0..ops {
            let job_id = rng.below(keys / 3 + 1);
            let schedule_index = rng.below(3) as u32;
            let key = (job_id, schedule_index);
            match rng.below(16) {
                0..=4 => {
                    let period = rng.pick(&PERIODS);
                    let anchor = now.saturating_add(offset(&mut rng));
                    let until = (rng.below(4) == 0).then(|| now.saturating_add(offset(&mut rng)));
                    let schedule = Every { anchor, period, until };
                    let after = now.saturating_add(offset(&mut rng) / 4);
                    let got = wheel.insert(job_id, schedule_index, schedule, after);
                    let want = schedule.next_fire_after_ms(after);
                    assert_eq!(got, want, "seed {seed} step {step}: insert deadline");
                    match want {
                        Some(deadline) => model.entries.insert(key, (schedule, deadline)),
                        None => model.entries.remove(&key),
                    };
                }
                5..=6 => {
                    let schedule = Every::new(now.saturating_add(offset(&mut rng)), rng.pick(&PERIODS));
                    let deadline = now.saturating_add(offset(&mut rng));
                    wheel.insert_at(job_id, schedule_index, schedule, deadline);
                    model.entries.insert(key, (schedule, deadline));
                }
                7 => {
                    assert_eq!(
                        wheel.remove(job_id, schedule_index),
                        model.entries.remove(&key).is_some(),
                        "seed {seed} step {step}: remove"
                    );
                }
                8 => {
                    let want: Vec<_> =
                        model.entries.keys().copied().filter(|&(job, _)| job == job_id).collect();
                    for gone in &want {
                        model.entries.remove(gone);
                    }
                    assert_eq!(wheel.remove_job(job_id), want.len(), "seed {seed} step {step}: remove_job");
                }
                9..=10 => {
                    let deadline = now.saturating_add(offset(&mut rng));
                    let want = match model.entries.get_mut(&key) {
                        Some(entry) => {
                            entry.1 = deadline;
                            true
                        }
                        None => false,
                    };
                    assert_eq!(
                        wheel.reschedule(job_id, schedule_index, deadline),
                        want,
                        "seed {seed} step {step}: reschedule"
                    );
                }
                _ => {
                    now = if rng.below(4) == 0 {
                        // Land exactly on the next deadline, the way a runtime sleeps.
                        wheel.next_deadline().map_or(now, |deadline| deadline.max(now))
                    } else {
                        now.saturating_add(stride(&mut rng))
                    };
                    out.clear();
                    wheel.advance(now, &mut out);
                    assert!(
                        out.windows(2).all(|pair| pair[0].scheduled_ms <= pair[1].scheduled_ms),
                        "seed {seed} step {step}: fires out of order"
                    );
                    let want = model.advance(now);
                    assert_eq!(
                        sorted(out.clone()),
                        sorted(want),
                        "seed {seed} step {step}: fires of advance to {now}"
                    );
                }
            }
            wheel.check_invariants();
            assert_eq!(wheel.len(), model.entries.len(), "seed {seed} step {step}: len");
            assert_eq!(
                wheel.next_deadline(),
                model.next_deadline(),
                "seed {seed} step {step}: next_deadline"
            );
            let probe = (rng.below(keys / 3 + 1), rng.below(3) as u32);
            assert_eq!(
                wheel.deadline_of(probe.0, probe.1),
                model.entries.get(&probe).map(|entry| entry.1),
                "seed {seed} step {step}: deadline_of"
            );
        }
    }

    /// How many workloads the randomized tests run, times `WHEEL_FUZZ_SCALE` (default 1; the
    /// defaults keep a debug `cargo test` quick, a larger scale searches deeper).
    fn seeds(base: u64) -> std::ops::Range<u64> {
        let scale = std::env::var("WHEEL_FUZZ_SCALE").ok().and_then(|scale| scale.parse().ok());
        0..base * scale.unwrap_or(1)
    }

    #[test]
    fn randomized_against_reference() {
        for seed in seeds(60) {
            run_workload(seed, T0, 1500);
        }
    }

    #[test]
    fn randomized_against_reference_near_block_boundaries() {
        for seed in seeds(30) {
            let boundary = ms_of((block_of(tick_of(T0)) + 1 + seed % 3) << WHEEL_BITS);
            run_workload(1_000_000 + seed, boundary - (seed as i64 * 7919) % 5000, 1500);
        }
    }

    #[test]
    fn randomized_against_reference_at_extremes() {
        for seed in seeds(15) {
            run_workload(2_000_000 + seed, -(seed as i64) * 13, 800);
            run_workload(3_000_000 + seed, i64::MAX - (1 << 44), 800);
            run_workload(4_000_000 + seed, i64::MIN + 5, 800);
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Insert { job: u64, index: u32, anchor: i64, period: i64, after: i64 },
            InsertAt { job: u64, index: u32, period: i64, deadline: i64 },
            Remove { job: u64, index: u32 },
            RemoveJob { job: u64 },
            Reschedule { job: u64, index: u32, deadline: i64 },
            Advance { stride: i64 },
        }

        fn offset() -> impl Strategy<Value = i64> {
            prop_oneof![-2000i64..2000, 0i64..200_000, 0i64..(3 * BLOCK_SPAN_MS as i64),]
        }

        fn op() -> impl Strategy<Value = Op> {
            let job = 0u64..6;
            let index = 0u32..2;
            let period = prop::sample::select(PERIODS.to_vec());
            prop_oneof![
                (job.clone(), index.clone(), offset(), period.clone(), offset()).prop_map(
                    |(job, index, anchor, period, after)| Op::Insert { job, index, anchor, period, after }
                ),
                (job.clone(), index.clone(), period, offset())
                    .prop_map(|(job, index, period, deadline)| Op::InsertAt { job, index, period, deadline }),
                (job.clone(), index.clone()).prop_map(|(job, index)| Op::Remove { job, index }),
                job.clone().prop_map(|job| Op::RemoveJob { job }),
                (job, index, offset()).prop_map(|(job, index, deadline)| Op::Reschedule {
                    job,
                    index,
                    deadline
                }),
                prop_oneof![0i64..100, 0i64..100_000, 0i64..(2 * BLOCK_SPAN_MS as i64)]
                    .prop_map(|stride| Op::Advance { stride }),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn matches_reference(ops in prop::collection::vec(op(), 1..80), limit in 1u32..6) {
                let mut wheel = Wheel::with_catchup_limit(T0, limit);
                let mut model = Model { entries: BTreeMap::new(), limit };
                let mut now = T0;
                for op in ops {
                    match op {
                        Op::Insert { job, index, anchor, period, after } => {
                            let schedule = Every::new(now + anchor, period);
                            let deadline = wheel.insert(job, index, schedule, now + after);
                            prop_assert_eq!(deadline, schedule.next_fire_after_ms(now + after));
                            if let Some(deadline) = deadline {
                                model.entries.insert((job, index), (schedule, deadline));
                            }
                        }
                        Op::InsertAt { job, index, period, deadline } => {
                            let schedule = Every::new(now, period);
                            wheel.insert_at(job, index, schedule, now + deadline);
                            model.entries.insert((job, index), (schedule, now + deadline));
                        }
                        Op::Remove { job, index } => {
                            prop_assert_eq!(wheel.remove(job, index), model.entries.remove(&(job, index)).is_some());
                        }
                        Op::RemoveJob { job } => {
                            let before = model.entries.len();
                            model.entries.retain(|&(j, _), _| j != job);
                            prop_assert_eq!(wheel.remove_job(job), before - model.entries.len());
                        }
                        Op::Reschedule { job, index, deadline } => {
                            let present = match model.entries.get_mut(&(job, index)) {
                                Some(entry) => { entry.1 = now + deadline; true }
                                None => false,
                            };
                            prop_assert_eq!(wheel.reschedule(job, index, now + deadline), present);
                        }
                        Op::Advance { stride } => {
                            now += stride;
                            let mut out = Vec::new();
                            wheel.advance(now, &mut out);
                            prop_assert!(out.windows(2).all(|pair| pair[0].scheduled_ms <= pair[1].scheduled_ms));
                            prop_assert_eq!(sorted(out), sorted(model.advance(now)));
                        }
                    }
                    wheel.check_invariants();
                    prop_assert_eq!(wheel.len(), model.entries.len());
                    prop_assert_eq!(wheel.next_deadline(), model.next_deadline());
                }
            }
        }
    }
}
