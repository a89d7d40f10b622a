//! The memory allocator: syncdeck runs on mimalloc, and this module owns the two settings it
//! changes from mimalloc's defaults. The binaries (`main.rs`, the sync bench) declare the
//! global allocator and have the loader run [`tune_at_load`]; nothing else here.
//!
//! Why mimalloc: a sync allocates a handful of small values per document (strings of the
//! source's fields, the id) on the source's task and frees many of them on the sink's, on
//! other threads. glibc's malloc pays for every such cross-thread free; mimalloc returns them
//! to their page cheaply. Why the two settings: mimalloc 3 keeps freed memory for a second
//! before giving it back, and commits its arenas eagerly. Both trade resident memory for a
//! little speed, and syncdeck promises a flat, small footprint (see README, "Sync engine").

use std::ffi::{CStr, c_long};

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
