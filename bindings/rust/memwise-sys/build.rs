//! Finds libmemwise for linking.
//!
//! By default through pkg-config (`memwise.pc`; set PKG_CONFIG_PATH to
//! PREFIX/lib/pkgconfig for a non-system prefix). To use a build tree or a
//! prefix without pkg-config, set MEMWISE_LIB_DIR to the directory holding
//! libmemwise.so (and MEMWISE_INCLUDE_DIR to the one holding memwise/memwise.h,
//! passed on to dependent build scripts as DEP_MEMWISE_INCLUDE). The bindings
//! themselves are checked in (src/bindings.rs), so no header is read here.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=MEMWISE_LIB_DIR");
    println!("cargo:rerun-if-env-changed=MEMWISE_INCLUDE_DIR");

    if let Some(lib_dir) = env::var_os("MEMWISE_LIB_DIR") {
        let lib_dir = PathBuf::from(lib_dir);
        if !lib_dir.is_dir() {
            panic!("MEMWISE_LIB_DIR={} is not a directory", lib_dir.display());
        }
        println!("cargo:rustc-link-search=native={}", lib_dir.display());
        println!("cargo:rustc-link-lib=dylib=memwise");
        if let Some(inc) = env::var_os("MEMWISE_INCLUDE_DIR") {
            println!("cargo:include={}", PathBuf::from(inc).display());
        }
        return;
    }

    match pkg_config::Config::new().atleast_version("0.1").probe("memwise") {
        Ok(lib) => {
            // pkg-config has printed the link flags; pass the include path on.
            if let Some(inc) = lib.include_paths.first() {
                println!("cargo:include={}", inc.display());
            }
        }
        Err(e) => panic!(
            "libmemwise not found through pkg-config: {e}\n\
             Install memwise (cmake --install build --prefix PREFIX) and set \
             PKG_CONFIG_PATH=PREFIX/lib/pkgconfig, or set MEMWISE_LIB_DIR to the \
             directory that holds libmemwise.so."
        ),
    }
}
