//! The memory allocator: syncdeck runs on mimalloc, and this module owns how Rust asks it for
//! memory ([`Mimalloc`]) and the two settings it changes from mimalloc's defaults. The
//! binaries (`main.rs`, the sync bench) declare [`Mimalloc`] the global allocator and have the
//! loader run [`tune_at_load`]; nothing else here.
//!
//! Why mimalloc: a sync allocates a handful of small values per document (strings of the
//! source's fields, the id) on the source's task and frees many of them on the sink's, on
//! other threads. glibc's malloc pays for every such cross-thread free; mimalloc returns them
//! to their page cheaply. Why the two settings: mimalloc 3 keeps freed memory for a second
//! before giving it back, and commits its arenas eagerly. Both trade resident memory for a
//! little speed, and syncdeck promises a flat, small footprint (see README, "Sync engine").

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{CStr, c_long, c_void};

/// mimalloc as Rust's global allocator, asking for plain allocations where they are aligned
/// enough: mimalloc's size classes are whole words and every page's first block starts at
/// least word-aligned, so an alignment of a word or less is met by `mi_malloc`.
///
/// Why not the `mimalloc` crate's `MiMalloc`: it sends every request through
/// `mi_malloc_aligned`. In mimalloc 3 that path serves a block only if the page's next free
/// block happens to be aligned; when a page's free list is empty (often here: documents made
/// on the source's thread are freed on the sink's), it takes the generic path, which
/// over-allocates `size + align - 1` unless the size class is a power of two. Measured with
/// callgrind on a fresh sync: about one such over-allocation a document, ~155 instructions
/// each, and ~65 instructions a call against ~30 for `mi_malloc` (README, "The allocator").
/// Larger alignments keep the aligned calls.
pub struct Mimalloc;

/// The alignment every mimalloc block has (its size classes are whole words).
const WORD: usize = std::mem::size_of::<usize>();

/// Whether `mi_malloc` of `size` bytes meets `align`. The size must also be a multiple of
/// the alignment (as every Rust type's is): mimalloc's optional guarded allocations (its
/// debug builds) put a sampled block right before a guard page, aligned only as its size is.
#[inline]
fn plain(size: usize, align: usize) -> bool {
    align <= WORD && size & (align - 1) == 0
}

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks of any
// of its allocation calls); a request aligned to more than a word, or whose size is not a
// multiple of its alignment, goes to the aligned calls, and `mi_malloc`, `mi_zalloc` and
// `mi_realloc` return word-aligned blocks (see above). All of them answer null on failure;
// `mi_realloc` and `mi_realloc_aligned` then leave the old block as it was.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain C allocation calls; a null answer is passed on as the failure.
        unsafe {
            if plain(layout.size(), layout.align()) {
                libmimalloc_sys::mi_malloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.size(), layout.align()) {
                libmimalloc_sys::mi_zalloc(layout.size()).cast()
            } else {
                libmimalloc_sys::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller passes a block this allocator handed out.
        unsafe { libmimalloc_sys::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a block this allocator handed out with `layout`; the
        // new block keeps its alignment, as `GlobalAlloc::realloc` requires.
        unsafe {
            // `mi_realloc` keeps the block (aligned as `layout` asked) or makes one as
            // `mi_malloc(new_size)` does, whichever call made the block.
            if plain(new_size, layout.align()) {
                libmimalloc_sys::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                libmimalloc_sys::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align())
                    .cast()
            }
        }
    }
}

/// `mi_option_arena_eager_commit` in mimalloc 3's `mi_option_e` (`mimalloc.h`); the Rust
/// binding names only some of the options.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// `mi_option_purge_delay`, in milliseconds (mimalloc 3 defaults to 1000).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// The settings syncdeck changes, with the environment variables (mimalloc's name and its
/// older one) that override each one.
const SETTINGS: [(libmimalloc_sys::mi_option_t, [&CStr; 2], c_long); 2] = [
    // Give freed pages back at once rather than a second later.
    (
        PURGE_DELAY,
        [c"MIMALLOC_PURGE_DELAY", c"MIMALLOC_RESET_DELAY"],
        0,
    ),
    // Commit arena memory as it is used, not ahead.
    (
        ARENA_EAGER_COMMIT,
        [
            c"MIMALLOC_ARENA_EAGER_COMMIT",
            c"MIMALLOC_EAGER_REGION_COMMIT",
        ],
        0,
    ),
];

/// Applies syncdeck's allocator settings, leaving any the operator set through mimalloc's own
/// variables (upper case, the current name or the older one) as they are.
///
/// It must run before the first allocation: mimalloc reads `arena_eager_commit` when it
/// creates its first arena, which the Rust runtime's own allocations do before `main`.
/// Hence the binaries run it from the ELF loader's `.init_array` (see [`tune_at_load`] and
/// `main.rs`), and it allocates nothing itself (`getenv`, not `std::env`). Measured: set from
/// `main`, the eager commit setting came too late and a 1M-document sync peaked at 75–78 MiB
/// instead of 41 (README, "The allocator").
pub fn tune() {
    for (option, variables, value) in SETTINGS {
        let set_by_operator = variables.iter().any(|variable| {
            // SAFETY: `getenv` with a NUL-terminated name, its answer only compared with null.
            // `getenv` races only with a concurrent `setenv`, which safe Rust cannot do
            // (`std::env::set_var` is unsafe and its callers must not let it race readers).
            !unsafe { libc::getenv(variable.as_ptr()) }.is_null()
        });
        if !set_by_operator {
            // SAFETY: sets a plain integer in mimalloc's option table; the option index is
            // within `_mi_option_last` (and checked by this module's test), and mimalloc
            // ignores an index outside it anyway.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
}

/// What [`tune`] governs, as mimalloc has it now: `(option name, value)`. For tests and
/// diagnostics.
pub fn settings() -> [(&'static str, c_long); 2] {
    // SAFETY: reads integers from mimalloc's option table (indices checked by the test).
    let get = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
    [
        ("purge_delay", get(PURGE_DELAY)),
        ("arena_eager_commit", get(ARENA_EAGER_COMMIT)),
    ]
}

/// [`tune`] as the loader calls it. A binary installs it with
/// `#[used] #[unsafe(link_section = ".init_array")] static TUNE: extern "C" fn() =
/// syncdeck::alloc::tune_at_load;` next to its `#[global_allocator]`: the static must be in
/// the binary's own crate, where the linker is sure to keep it.
pub extern "C" fn tune_at_load() {
    tune();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain calls serve word alignments of sizes that are whole multiples of them; the rest
    /// go to the aligned calls.
    #[test]
    fn plain_calls_take_word_alignments_of_whole_sizes() {
        assert!(plain(1, 1) && plain(13, 1) && plain(24, 8) && plain(6, 2));
        assert!(
            !plain(13, 8),
            "a size that is not a multiple of the alignment"
        );
        assert!(!plain(32, 16) && !plain(4096, 4096), "more than a word");
    }

    /// Every size to 1100 bytes, and around each power of two to 1 MiB (either side, and a
    /// half and three quarters on), at every alignment from 1 to 4 KiB: each block is
    /// aligned as asked, holds what was written to it, is zeroed when asked, and keeps both
    /// through `realloc`.
    #[test]
    fn blocks_are_aligned_as_asked_at_every_size() {
        let mut sizes: Vec<usize> = (1..=1100).collect();
        for p in 10..=20 {
            let s = 1usize << p;
            sizes.extend([s - 8, s - 1, s, s + 1, s + 8, s + s / 2, s + 3 * s / 4]);
        }
        let check = |p: *mut u8, layout: Layout| {
            assert!(!p.is_null(), "{layout:?}");
            assert_eq!(p as usize % layout.align(), 0, "{layout:?}");
        };
        for align in (0..=12).map(|p| 1usize << p) {
            // Held at once, so blocks come from the same pages in turn, not one reused block.
            let mut held = Vec::new();
            for &size in &sizes {
                let Ok(layout) = Layout::from_size_align(size, align) else {
                    continue;
                };
                // SAFETY: non-zero sizes; every block is freed below with its layout.
                unsafe {
                    let p = Mimalloc.alloc(layout);
                    check(p, layout);
                    p.write_bytes(0xa5, size);
                    let z = Mimalloc.alloc_zeroed(layout);
                    check(z, layout);
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                    let grown = Layout::from_size_align(size * 2 + 24, align).expect("valid");
                    let q = Mimalloc.realloc(p, layout, grown.size());
                    check(q, grown);
                    assert!(
                        std::slice::from_raw_parts(q, size)
                            .iter()
                            .all(|&b| b == 0xa5)
                    );
                    held.push((q, grown));
                    held.push((z, layout));
                }
            }
            for (p, layout) in held {
                // SAFETY: each block once, with the layout it now has.
                unsafe { Mimalloc.dealloc(p, layout) };
            }
        }
    }

    /// The option table is indexed by number: a mimalloc whose enum moved would have `tune`
    /// change something else. Each index must still hold its option's documented default
    /// (1000 ms and 2, "on where the OS overcommits"), which no neighbour shares. The unit
    /// tests run on the system allocator, so nothing has set them before this test; it then
    /// checks that `tune` sets both (one test: the table is global).
    #[test]
    fn the_options_are_the_ones_named_and_tune_sets_them() {
        let unset = |variables: [&CStr; 2]| {
            variables.iter().all(|variable| {
                let variable = variable.to_str().expect("the names are ASCII");
                std::env::var_os(variable).is_none()
            })
        };
        for ((option, variables, _), default) in SETTINGS.into_iter().zip([1000, 2]) {
            if unset(variables) {
                // SAFETY: reads an integer from mimalloc's option table.
                assert_eq!(unsafe { libmimalloc_sys::mi_option_get(option) }, default);
            }
        }
        tune();
        for (option, variables, value) in SETTINGS {
            if unset(variables) {
                // SAFETY: as above.
                assert_eq!(unsafe { libmimalloc_sys::mi_option_get(option) }, value);
            }
        }
        assert_eq!(
            settings().map(|(name, _)| name),
            ["purge_delay", "arena_eager_commit"]
        );
    }
}
