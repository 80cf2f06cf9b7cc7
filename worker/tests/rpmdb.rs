//! The base root's rpm database as `dbuild local` reads it: the capability
//! names of the real cached builder root.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpmdb_provides_lists_base_provides_of_the_debian_root() {
    let root = support::base_root().await;
    let names = dbuild_worker::rootfs::rpmdb_provides(&root).await.unwrap();
    for want in [
        "dbuild-base-provides",
        "gcc",
        "make",
        "glibc-devel",
        "rpm-build",
        "/bin/sh",
        "libc6-dev",
    ] {
        assert!(
            names.binary_search(&want.to_string()).is_ok(),
            "{want} missing from {} names",
            names.len()
        );
    }
    assert!(!names.iter().any(|n| n.is_empty() || n.contains('\n')));
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
    // A directory without rpm fails naming the root.
    let empty = tempfile::tempdir().unwrap();
    let err = dbuild_worker::rootfs::rpmdb_provides(empty.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&empty.path().display().to_string()), "{err}");
}
