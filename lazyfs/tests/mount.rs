//! Through the kernel: a synced write survives a power cut, an unsynced one does not, and a closed
//! file is not a synced one.

use std::io::Write;

use onekey_lazyfs::LazyFs;

#[test]
fn a_power_cut_keeps_what_was_synced_and_loses_the_rest() {
    let dir = tempfile_dir();
    let backing = dir.join("backing");
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&backing).expect("backing dir");
    std::fs::create_dir_all(&mnt).expect("mountpoint");
    let fs = LazyFs::mount(&backing, &mnt).expect("mount (needs /dev/fuse and CAP_SYS_ADMIN)");

    let mut kept = std::fs::File::create(mnt.join("kept")).expect("create");
    kept.write_all(b"synced").expect("write");
    kept.sync_all().expect("fsync");
    kept.write_all(b" and then not").expect("write");
    drop(kept);
    std::fs::write(mnt.join("closed"), b"closed but never synced").expect("write");
    std::fs::create_dir(mnt.join("sub")).expect("mkdir");
    assert_eq!(
        std::fs::read(mnt.join("kept")).expect("read back"),
        b"synced and then not",
        "readers see unsynced data before the cut"
    );

    let counts = fs.cut_power();
    assert!(counts.lost_pages >= 2, "{counts:?}");
    assert!(
        std::fs::read(mnt.join("kept")).is_err(),
        "a dead disk answers EIO"
    );
    drop(fs);

    assert_eq!(
        std::fs::read(backing.join("kept")).expect("kept"),
        b"synced"
    );
    assert_eq!(std::fs::read(backing.join("closed")).expect("closed"), b"");
    assert!(backing.join("sub").is_dir(), "metadata is not lazy");

    let again = LazyFs::mount(&backing, &mnt).expect("remount");
    assert_eq!(
        std::fs::read(mnt.join("kept")).expect("after remount"),
        b"synced"
    );
    drop(again);
    std::fs::remove_dir_all(&dir).ok();
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "onekey-lazyfs-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
