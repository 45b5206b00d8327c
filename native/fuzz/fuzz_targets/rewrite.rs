//! Any bytes as two event files merged by the rewrite pass (Python's `engine.rewrite`
//! loop, native): it must not panic, must end every file, and must write whole valid
//! frames (of valid Events when every record is checked), one per Event read (a host that keeps every record and puts
//! every tag on the fast path, renamed). Run: see native/README.md.
#![no_main]

use std::os::fd::{AsRawFd, RawFd};

use libfuzzer_sys::fuzz_target;
use tbrewrite_native::proto::validate_event;
use tbrewrite_native::rewrite::{rewrite, FileEnd, FilePlan, Host, Slow};
use tbrewrite_native::tf_record::{RecordReader, SliceSource};
use tbrewrite_native::wire::peek;

struct Keep {
    slow: u64,
}

impl Host for Keep {
    type Error = ();
    fn next_extra(&mut self) -> Result<Option<(f64, Vec<u8>)>, ()> {
        Ok(None)
    }
    fn slow(&mut self, _source: usize, data: &[u8], _offset: u64, _extras: u64, _counted: Vec<(Vec<u8>, u64)>) -> Result<Slow, ()> {
        self.slow += 1;
        let fast = match peek(data) {
            Some(p) => {
                let tag = data[p.tag.0..p.tag.1].to_vec();
                let new = [b"t/".as_slice(), &tag].concat();
                vec![(tag, Some(new))]
            }
            None => Vec::new(),
        };
        let fd: Option<RawFd> = None;
        Ok(Slow { data: Some(data.to_vec()), fast, fd, ..Slow::default() })
    }
}

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = data.split_first().unwrap_or((&0, &[]));
    let cut = if rest.is_empty() { 0 } else { (*flags as usize * 37) % (rest.len() + 1) };
    let dir = std::env::temp_dir().join(format!("tbrewrite-fuzz-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut plans = Vec::new();
    for (k, part) in [&rest[..cut], &rest[cut..]].into_iter().enumerate() {
        let path = dir.join(format!("in{k}"));
        std::fs::write(&path, part).unwrap();
        let resync = flags & 1 != 0;
        plans.push(vec![FilePlan { path, limit: part.len() as u64, resync, check: flags & 2 != 0, expected: Vec::new() }]);
    }
    let out_path = dir.join("out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut host = Keep { slow: 0 };
    let done = rewrite(plans, false, Some(out.as_raw_fd()), &mut host).unwrap();
    drop(out);
    assert_eq!(done.files.len(), 2);
    let events: u64 = done.files.iter().map(|f| f.events).sum();
    for f in &done.files {
        assert!(matches!(f.end, FileEnd::Finished { .. }), "no checkpoint was expected, none can differ before the end");
    }
    assert_eq!(done.records, events);
    assert_eq!(host.slow + done.renamed, events);
    let written = std::fs::read(&out_path).unwrap();
    assert_eq!(written.len() as u64, done.bytes);
    let mut reader = RecordReader::new(SliceSource::new(&written), false);
    let mut n = 0;
    while let Some((_, record)) = reader.next_record().unwrap() {
        // Without `check`, peeked records are trusted (a first pass validated them).
        assert!(flags & 2 == 0 || validate_event(record).is_ok());
        n += 1;
    }
    assert!(reader.damage.is_empty() || written.is_empty(), "{:?}", reader.damage);
    assert_eq!(n, events);
});
