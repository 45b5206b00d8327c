//! `tbrewrite._native`: the PyO3 binding. One call reads a whole file (or buffer) with the
//! GIL released and returns compact columns; no Python call is made per record. A panic
//! never crosses into Python as a `PanicException`: it is caught and raised as
//! `NativeError` with one line of text.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::event_file::{self, Scan};
use crate::masked_crc;
use crate::proto;
use crate::rewrite as pass;
use crate::tf_record::{self, Damage, SliceSource};
use crate::wire;

create_exception!(
    _native,
    NativeError,
    PyException,
    "An internal failure of the native core (a bug): the message is one line."
);

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
    .replace('\n', " ")
}

thread_local! {
    /// Set while [`guarded`] runs, so the panic hook stays quiet only for our panics.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` catching panics; a panic becomes `NativeError("{what}: internal error ...")`.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> PyResult<T> {
    let outer = GUARDED.with(|g| g.replace(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.map_err(|p| NativeError::new_err(format!("{what}: internal error in the native core: {}", panic_text(p))))
}

/// Keep the panic hook from printing a multi-line report for a panic that [`guarded`]
/// turns into `NativeError`; any other panic in the process reaches the previous hook.
fn quiet_guarded_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !GUARDED.with(|g| g.get()) {
            previous(info);
        }
    }));
}

/// _test_panic(): panic inside the guard (for the test that a panic arrives as one line).
#[pyfunction]
fn _test_panic(py: Python<'_>) -> PyResult<()> {
    py.allow_threads(|| guarded("_test_panic", || panic!("deliberate panic\nsecond line")))
}

fn os_error(e: std::io::Error, path: &Path) -> PyErr {
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let strerror = text.strip_suffix(&format!(" (os error {code})")).unwrap_or(&text).to_string();
            PyOSError::new_err((code, strerror, path.as_os_str().to_os_string()))
        }
        None => PyOSError::new_err((e.to_string(),)),
    }
}

fn le_bytes<T: Copy, const N: usize>(py: Python<'_>, v: &[T], f: impl Fn(T) -> [u8; N]) -> Py<PyBytes> {
    PyBytes::new_with(py, v.len() * N, |buf| {
        for (chunk, x) in buf.chunks_exact_mut(N).zip(v) {
            chunk.copy_from_slice(&f(*x));
        }
        Ok(())
    })
    .expect("allocating bytes")
    .unbind()
}

fn damage_tuple(py: Python<'_>, d: &Damage) -> PyResult<PyObject> {
    Ok((d.kind.as_str(), d.offset, d.records_before, d.detail.as_str(), d.resumed_at)
        .into_pyobject(py)?
        .into_any()
        .unbind())
}

/// The scan's dict; `tags` holds the tags from id `tag_base` on (all for a whole scan).
fn scan_dict<'py>(py: Python<'py>, s: &Scan, tag_base: usize) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("size", s.size)?;
    d.set_item("frames", s.frames)?;
    d.set_item("records", s.records)?;
    let damage = PyList::empty(py);
    for x in &s.damage {
        damage.append(damage_tuple(py, x)?)?;
    }
    d.set_item("damage", damage)?;
    let tags = PyList::empty(py);
    for t in &s.tags[tag_base..] {
        tags.append(String::from_utf8_lossy(t))?;
    }
    d.set_item("tags", tags)?;
    let metadata = PyList::empty(py);
    for (id, m) in &s.metadata {
        metadata.append((*id, PyBytes::new(py, m)))?;
    }
    d.set_item("metadata", metadata)?;
    d.set_item("more_rows", le_bytes(py, &s.more_rows, u32::to_le_bytes))?;
    d.set_item("more_tag_ids", le_bytes(py, &s.more_tag_ids, u32::to_le_bytes))?;
    d.set_item("more_kinds", PyBytes::new(py, &s.more_kinds))?;
    d.set_item("more_flags", PyBytes::new(py, &s.more_flags))?;
    let checkpoints = PyList::empty(py);
    for c in &s.checkpoints {
        checkpoints.append((c.records, c.end, c.digest))?;
    }
    d.set_item("checkpoints", checkpoints)?;
    match &s.stamp {
        Some(st) => d.set_item("stamp", (st.dev, st.ino, st.size, st.mtime_ns))?,
        None => d.set_item("stamp", py.None())?,
    }
    d.set_item("offsets", le_bytes(py, &s.offsets, u64::to_le_bytes))?;
    d.set_item("lengths", le_bytes(py, &s.lengths, u64::to_le_bytes))?;
    d.set_item("wall_times", le_bytes(py, &s.wall_times, f64::to_le_bytes))?;
    d.set_item("steps", le_bytes(py, &s.steps, i64::to_le_bytes))?;
    d.set_item("whats", PyBytes::new(py, &s.whats))?;
    d.set_item("values", le_bytes(py, &s.values, u32::to_le_bytes))?;
    d.set_item("value_kinds", PyBytes::new(py, &s.value_kinds))?;
    d.set_item("tag_ids", le_bytes(py, &s.tag_ids, u32::to_le_bytes))?;
    d.set_item("flags", PyBytes::new(py, &s.flags))?;
    d.set_item("scalars", le_bytes(py, &s.scalars, f64::to_le_bytes))?;
    d.set_item("summary_at", le_bytes(py, &s.summary_at, u32::to_le_bytes))?;
    d.set_item("rest_at", le_bytes(py, &s.rest_at, u32::to_le_bytes))?;
    Ok(d)
}

/// scan_file(path, resync=False, limit=None) -> dict  (path: str or os.PathLike)
///
/// Read one event file as Python's EventFileReader does and return its columns (see
/// native/README.md for the keys, dtypes and flag bits). Raises OSError (with errno and
/// filename) if the file cannot be opened or read, NativeError on an internal failure.
#[pyfunction]
#[pyo3(signature = (path, resync = false, limit = None))]
fn scan_file<'py>(py: Python<'py>, path: PathBuf, resync: bool, limit: Option<u64>) -> PyResult<Bound<'py, PyDict>> {
    let result = py.allow_threads(|| {
        guarded(&path.to_string_lossy(), || {
            let src = tf_record::open(&path, limit)?;
            event_file::scan(src, resync)
        })
    })?;
    let scan = result.map_err(|e| os_error(e, &path))?;
    scan_dict(py, &scan, 0)
}

/// FileScanner(path, resync=False, limit=None): scan_file a batch at a time, so that
/// memory stays flat on large files. `read(max_records)` returns the dict of scan_file for
/// the next at most `max_records` valid records (rows numbered from 0 in each batch;
/// `tags` holds only the tags first seen in this batch, their ids following on from the
/// earlier batches'; `metadata` only what this batch found), plus `done`: once True, the
/// totals (`records`, `frames`, `damage`, `checkpoints`) are the file's.
#[pyclass(module = "tbrewrite._native")]
struct FileScanner {
    scanner: event_file::Scanner<tf_record::FileSource>,
    path: PathBuf,
    tags_sent: usize,
}

#[pymethods]
impl FileScanner {
    #[new]
    #[pyo3(signature = (path, resync = false, limit = None))]
    fn new(py: Python<'_>, path: PathBuf, resync: bool, limit: Option<u64>) -> PyResult<Self> {
        let result = py.allow_threads(|| guarded(&path.to_string_lossy(), || tf_record::open(&path, limit)))?;
        let src = result.map_err(|e| os_error(e, &path))?;
        Ok(FileScanner { scanner: event_file::Scanner::new(src, resync), path, tags_sent: 0 })
    }

    fn read<'py>(&mut self, py: Python<'py>, max_records: usize) -> PyResult<Bound<'py, PyDict>> {
        let (scanner, path) = (&mut self.scanner, &self.path);
        scanner.out.clear_rows();
        let result = py.allow_threads(|| guarded(&path.to_string_lossy(), || scanner.step(max_records)))?;
        result.map_err(|e| os_error(e, path))?;
        let d = scan_dict(py, &self.scanner.out, self.tags_sent)?;
        d.set_item("done", self.scanner.done())?;
        self.tags_sent = self.scanner.out.tags.len();
        Ok(d)
    }

    /// read(max_records), folded per tag: instead of the per-record columns, `whats`
    /// (list of (field number, count)), `first_wall_time` (float or None) and `groups`:
    /// one tuple per tag of the batch in order of first appearance, `(tag_id, count,
    /// first_step, first_wall_time, first_form, first_has_metadata, last_step,
    /// last_wall_time, min_step, max_step, backwards, repeated, metadata_form or None,
    /// backwards_at)`, with at most `backwards_limit` (None: all) `(position in the
    /// group, previous step, step)` in `backwards_at`.
    #[pyo3(signature = (max_records, backwards_limit = None))]
    fn fold<'py>(&mut self, py: Python<'py>, max_records: usize, backwards_limit: Option<usize>) -> PyResult<Bound<'py, PyDict>> {
        let (scanner, path) = (&mut self.scanner, &self.path);
        scanner.out.clear_rows();
        let result = py.allow_threads(|| {
            guarded(&path.to_string_lossy(), || scanner.step(max_records).map(|()| event_file::fold(&scanner.out, backwards_limit)))
        })?;
        let folded = result.map_err(|e| os_error(e, path))?;
        let s = &self.scanner.out;
        let d = PyDict::new(py);
        d.set_item("size", s.size)?;
        d.set_item("frames", s.frames)?;
        d.set_item("records", s.records)?;
        let damage = PyList::empty(py);
        for x in &s.damage {
            damage.append(damage_tuple(py, x)?)?;
        }
        d.set_item("damage", damage)?;
        let tags = PyList::empty(py);
        for t in &s.tags[self.tags_sent..] {
            tags.append(String::from_utf8_lossy(t))?;
        }
        d.set_item("tags", tags)?;
        let metadata = PyList::empty(py);
        for (id, m) in &s.metadata {
            metadata.append((*id, PyBytes::new(py, m)))?;
        }
        d.set_item("metadata", metadata)?;
        let checkpoints = PyList::empty(py);
        for c in &s.checkpoints {
            checkpoints.append((c.records, c.end, c.digest))?;
        }
        d.set_item("checkpoints", checkpoints)?;
        match &s.stamp {
            Some(st) => d.set_item("stamp", (st.dev, st.ino, st.size, st.mtime_ns))?,
            None => d.set_item("stamp", py.None())?,
        }
        d.set_item("whats", folded.whats)?;
        d.set_item("first_wall_time", folded.first_wall_time)?;
        let groups = PyList::empty(py);
        for g in folded.groups {
            let head = (g.tag_id, g.count, g.first_step, g.first_wall_time, g.first_form, g.first_has_metadata, g.last_step);
            let tail = (g.last_wall_time, g.min_step, g.max_step, g.backwards, g.repeated, g.metadata_form, g.backwards_at);
            groups.append((head, tail))?;
        }
        d.set_item("groups", groups)?;
        d.set_item("done", self.scanner.done())?;
        self.tags_sent = self.scanner.out.tags.len();
        Ok(d)
    }
}

/// scan_bytes(data, resync=False) -> dict
///
/// scan_file on the bytes of a whole file held in memory.
#[pyfunction]
#[pyo3(signature = (data, resync = false))]
fn scan_bytes<'py>(py: Python<'py>, data: &[u8], resync: bool) -> PyResult<Bound<'py, PyDict>> {
    let result = py.allow_threads(|| guarded("<bytes>", || event_file::scan(SliceSource::new(data), resync)))?;
    let scan = result.map_err(|e| os_error(e, Path::new("<bytes>")))?;
    scan_dict(py, &scan, 0)
}

/// read_scalars(paths, resync=False) -> dict
///
/// The scalars of one run (its event files in TensorBoard's order), as the Python
/// export's iter_scalars reads them; see native/README.md for the keys.
#[pyfunction]
#[pyo3(signature = (paths, resync = false))]
fn read_scalars<'py>(py: Python<'py>, paths: Vec<PathBuf>, resync: bool) -> PyResult<Bound<'py, PyDict>> {
    let result = py.allow_threads(|| {
        guarded("read_scalars", || {
            let mut out = event_file::Scalars::default();
            for path in &paths {
                let src = tf_record::open(path, None).map_err(|e| (e, path.clone()))?;
                out.read(src, resync).map_err(|e| (e, path.clone()))?;
            }
            Ok::<_, (std::io::Error, PathBuf)>(out)
        })
    })?;
    let s = result.map_err(|(e, path)| os_error(e, &path))?;
    let d = PyDict::new(py);
    let tags = PyList::empty(py);
    for t in &s.tags {
        tags.append(String::from_utf8_lossy(t))?;
    }
    d.set_item("tags", tags)?;
    d.set_item("files", le_bytes(py, &s.files, u32::to_le_bytes))?;
    d.set_item("tag_ids", le_bytes(py, &s.tag_ids, u32::to_le_bytes))?;
    d.set_item("steps", le_bytes(py, &s.steps, i64::to_le_bytes))?;
    d.set_item("wall_times", le_bytes(py, &s.wall_times, f64::to_le_bytes))?;
    d.set_item("values", le_bytes(py, &s.values, f64::to_le_bytes))?;
    d.set_item("dtypes", le_bytes(py, &s.dtypes, u8::to_le_bytes))?;
    let damage = PyList::empty(py);
    for file in &s.damage {
        let list = PyList::empty(py);
        for x in file {
            list.append(damage_tuple(py, x)?)?;
        }
        damage.append(list)?;
    }
    d.set_item("damage", damage)?;
    Ok(d)
}

/// ScalarReader(paths, resync=False): read_scalars a batch at a time, so that memory
/// stays flat on large runs. `read(max_rows)` returns read_scalars' dict for the next rows
/// (at least `max_rows` of them unless the run ends; a record's values are never split
/// between batches), except that `tags` holds only the tags first seen in this batch (ids
/// follow on from earlier batches'), `damage` the damage lists of the files finished in
/// this batch, which start at file index `first_file`; plus `done`. With `others`
/// (ScalarReader(paths, resync=False, others=False)), also `plugins` (the plugin name of
/// each new tag's first value) and the `other_*` columns of the records holding anything
/// but scalars (`event_file::Other`), for `tbrewrite.frames`.
#[pyclass(module = "tbrewrite._native")]
struct ScalarReader {
    paths: Vec<PathBuf>,
    resync: bool,
    next: usize,
    current: Option<event_file::ScalarFile<tf_record::FileSource>>,
    out: event_file::Scalars,
    tags_sent: usize,
    damage_sent: usize,
}

#[pymethods]
impl ScalarReader {
    #[new]
    #[pyo3(signature = (paths, resync = false, others = false))]
    fn new(paths: Vec<PathBuf>, resync: bool, others: bool) -> Self {
        ScalarReader {
            paths,
            resync,
            next: 0,
            current: None,
            out: event_file::Scalars::with_others(others),
            tags_sent: 0,
            damage_sent: 0,
        }
    }

    fn read<'py>(&mut self, py: Python<'py>, max_rows: usize) -> PyResult<Bound<'py, PyDict>> {
        self.out.clear_rows();
        let this = &mut *self;
        let result = py.allow_threads(|| {
            guarded("read_scalars", || {
                while this.out.values.len() < max_rows && !this.out.others_full() {
                    if this.current.is_none() {
                        let Some(path) = this.paths.get(this.next) else { break };
                        match tf_record::open(path, None) {
                            Ok(src) => this.current = Some(event_file::ScalarFile::new(src, this.resync)),
                            // Hand out the rows read so far first; the next call raises.
                            Err(_) if !this.out.values.is_empty() => break,
                            Err(e) => return Err((e, path.clone())),
                        }
                        this.next += 1;
                    }
                    let file = this.current.as_mut().unwrap();
                    let want = max_rows - this.out.values.len();
                    this.out.read_some(file, want).map_err(|e| (e, this.paths[this.next - 1].clone()))?;
                    if file.done() {
                        this.current = None;
                    }
                }
                Ok::<_, (std::io::Error, PathBuf)>(())
            })
        })?;
        result.map_err(|(e, path)| os_error(e, &path))?;
        let s = &self.out;
        let d = PyDict::new(py);
        let tags = PyList::empty(py);
        for t in &s.tags[self.tags_sent..] {
            tags.append(String::from_utf8_lossy(t))?;
        }
        d.set_item("tags", tags)?;
        d.set_item("files", le_bytes(py, &s.files, u32::to_le_bytes))?;
        d.set_item("tag_ids", le_bytes(py, &s.tag_ids, u32::to_le_bytes))?;
        d.set_item("steps", le_bytes(py, &s.steps, i64::to_le_bytes))?;
        d.set_item("wall_times", le_bytes(py, &s.wall_times, f64::to_le_bytes))?;
        d.set_item("values", le_bytes(py, &s.values, f64::to_le_bytes))?;
    d.set_item("dtypes", le_bytes(py, &s.dtypes, u8::to_le_bytes))?;
        if s.collect_others {
            let plugins = PyList::empty(py);
            for p in &s.plugins[self.tags_sent..] {
                plugins.append(String::from_utf8_lossy(p))?;
            }
            d.set_item("plugins", plugins)?;
            let o = &s.others;
            d.set_item("other_files", le_bytes(py, &o.iter().map(|x| x.file).collect::<Vec<_>>(), u32::to_le_bytes))?;
            d.set_item("other_offsets", le_bytes(py, &o.iter().map(|x| x.offset).collect::<Vec<_>>(), u64::to_le_bytes))?;
            d.set_item("other_lengths", le_bytes(py, &o.iter().map(|x| x.length).collect::<Vec<_>>(), u64::to_le_bytes))?;
            d.set_item("other_whats", le_bytes(py, &o.iter().map(|x| x.what).collect::<Vec<_>>(), u8::to_le_bytes))?;
            d.set_item("other_values", le_bytes(py, &o.iter().map(|x| x.values).collect::<Vec<_>>(), u32::to_le_bytes))?;
            d.set_item("other_kinds", le_bytes(py, &o.iter().map(|x| x.kind).collect::<Vec<_>>(), u8::to_le_bytes))?;
            d.set_item("other_tag_ids", le_bytes(py, &o.iter().map(|x| x.tag_id).collect::<Vec<_>>(), u32::to_le_bytes))?;
            d.set_item("other_steps", le_bytes(py, &o.iter().map(|x| x.step).collect::<Vec<_>>(), i64::to_le_bytes))?;
        }
        let damage = PyList::empty(py);
        for file in &s.damage[self.damage_sent..] {
            let list = PyList::empty(py);
            for x in file {
                list.append(damage_tuple(py, x)?)?;
            }
            damage.append(list)?;
        }
        d.set_item("damage", damage)?;
        d.set_item("first_file", self.damage_sent)?;
        d.set_item("done", self.current.is_none() && self.next == self.paths.len())?;
        self.tags_sent = s.tags.len();
        self.damage_sent = s.damage.len();
        Ok(d)
    }
}

/// peek(data) -> (wall_time, step, tag, summary_at, rest_at) | None, as wire.peek.
#[pyfunction]
fn peek(py: Python<'_>, data: &[u8]) -> PyResult<PyObject> {
    let p = guarded("peek", || wire::peek(data))?;
    Ok(match p {
        Some(p) => (p.wall_time, p.step, PyBytes::new(py, &data[p.tag.0..p.tag.1]), p.summary_at, p.rest_at)
            .into_pyobject(py)?
            .into_any()
            .unbind(),
        None => py.None(),
    })
}

/// retag(data, tag) -> bytes | None: the record with its value's tag replaced (wire.retag),
/// or None if the record is not of the common shape.
#[pyfunction]
fn retag(py: Python<'_>, data: &[u8], tag: &[u8]) -> PyResult<Option<Py<PyBytes>>> {
    let out = guarded("retag", || wire::peek(data).map(|p| wire::retag(data, &p, tag)))?;
    Ok(out.map(|v| PyBytes::new(py, &v).unbind()))
}

/// validate_event(data) -> str | None: None if data is a valid tensorboard.Event, else
/// the message Event.FromString's DecodeError would carry.
#[pyfunction]
fn validate_event(py: Python<'_>, data: &[u8]) -> PyResult<Option<String>> {
    let r = py.allow_threads(|| guarded("validate_event", || proto::validate_event(data)))?;
    Ok(r.err().map(|e| e.python_text()))
}

/// crc32c(data) -> int: the plain CRC-32C.
#[pyfunction(name = "crc32c")]
fn plain_crc32c(py: Python<'_>, data: &[u8]) -> u32 {
    py.allow_threads(|| masked_crc::crc32c(data))
}

/// masked_crc32c(data) -> int: TensorFlow's masked CRC-32C.
#[pyfunction]
fn masked_crc32c(py: Python<'_>, data: &[u8]) -> u32 {
    py.allow_threads(|| masked_crc::masked_crc32c(data))
}

/// encode_record(data) -> bytes: data framed as one TFRecord.
#[pyfunction]
fn encode_record<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    let mut out = Vec::with_capacity(data.len() + 16);
    tf_record::encode_record(data, &mut out);
    PyBytes::new(py, &out)
}

/// The Python side of a rewrite pass: an object with `slow(source, data, offset,
/// extras_done, counted) -> (bytes | None, fast, per_value, ordinals, fd: int)` as
/// [`SlowReply`] (fd -1: the output is not opened by this call) and `next_extra() ->
/// (float, bytes) | None`.
struct PyHost {
    host: PyObject,
}

impl pass::Host for PyHost {
    type Error = PyErr;

    fn next_extra(&mut self) -> PyResult<Option<(f64, Vec<u8>)>> {
        Python::with_gil(|py| {
            let item = self.host.call_method0(py, "next_extra")?;
            if item.is_none(py) {
                return Ok(None);
            }
            let (wall_time, data): (f64, Bound<'_, PyBytes>) = item.extract(py)?;
            Ok(Some((wall_time, data.as_bytes().to_vec())))
        })
    }

    fn slow(&mut self, source: usize, data: &[u8], offset: u64, extras_done: u64, counted: Vec<(Vec<u8>, u64)>) -> PyResult<pass::Slow> {
        Python::with_gil(|py| {
            let counted: Vec<(Bound<'_, PyBytes>, u64)> = counted.into_iter().map(|(t, n)| (PyBytes::new(py, &t), n)).collect();
            let reply = self.host.call_method1(py, "slow", (source, PyBytes::new(py, data), offset, extras_done, counted))?;
            let (out, fast, per_value, ordinals, fd): SlowReply<'_> = reply.extract(py)?;
            let bytes = |b: Bound<'_, PyBytes>| b.as_bytes().to_vec();
            Ok(pass::Slow {
                data: out.map(bytes),
                fast: fast.into_iter().map(|(t, n)| (bytes(t), n.map(bytes))).collect(),
                per_value: per_value
                    .into_iter()
                    .map(|(t, n, (next, keep, step_lo, step_hi, wall_lo, wall_hi))| {
                        let spec = pass::PerValue { next, keep, steps: (step_lo, step_hi), wall_times: (wall_lo, wall_hi) };
                        (bytes(t), n.map(bytes), spec)
                    })
                    .collect(),
                ordinals: ordinals.into_iter().map(|(t, next)| (bytes(t), next)).collect(),
                fd: if fd >= 0 { Some(fd as i32) } else { None },
            })
        })
    }
}

/// A per-value rule as the host gives it: `(next, keep, step_start, step_stop,
/// wall_time_start, wall_time_stop)` ([`pass::PerValue`]).
type PerValueSpec = (u64, Option<Vec<u64>>, Option<i64>, Option<i64>, Option<f64>, Option<f64>);

/// What `host.slow` returns: the record to write, fast-path tags, per-value tags with
/// their rules, ordinals of per-value tags counted by the host, the output's fd or -1.
type SlowReply<'py> = (
    Option<Bound<'py, PyBytes>>,
    Vec<(Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>)>,
    Vec<(Bound<'py, PyBytes>, Option<Bound<'py, PyBytes>>, PerValueSpec)>,
    Vec<(Bound<'py, PyBytes>, u64)>,
    i64,
);

type FileSpec = (PathBuf, u64, bool, bool, Vec<(u64, u64, u64)>);

/// rewrite(sources, host, extras, fd, out_path) -> dict
///
/// Python `engine.rewrite.rewrite`'s loop (see native/README.md): `sources` one list per
/// source of `(path, limit, resync, check, checkpoints)`; `host` as [`PyHost`]; `extras`
/// whether `host.next_extra` has events; `fd` the open output's descriptor or None;
/// `out_path` names the output in errors. Returns `files` (one `(source, file, changed,
/// verified, damage, last_checkpoint, file_size, events)` per file, in the order they
/// ended), `renamed`, `thinned`, `cropped`, `records`, `bytes`. Raises OSError (filename set), what `host`
/// raises, NativeError on an internal failure.
#[pyfunction(name = "rewrite")]
fn rewrite_file<'py>(
    py: Python<'py>,
    sources: Vec<Vec<FileSpec>>,
    host: PyObject,
    extras: bool,
    fd: Option<i32>,
    out_path: PathBuf,
) -> PyResult<Bound<'py, PyDict>> {
    let plans: Vec<Vec<pass::FilePlan>> = sources
        .into_iter()
        .map(|files| {
            files
                .into_iter()
                .map(|(path, limit, resync, check, expected)| pass::FilePlan {
                    path,
                    limit,
                    resync,
                    check,
                    expected: expected.into_iter().map(|(records, end, digest)| tf_record::Checkpoint { records, end, digest }).collect(),
                })
                .collect()
        })
        .collect();
    let mut host = PyHost { host };
    let result = py.allow_threads(|| guarded(&out_path.to_string_lossy(), || pass::rewrite(plans, extras, fd, &mut host)))?;
    let outcome = result.map_err(|e| match e {
        pass::Error::Io(e, path) => os_error(e, path.as_deref().unwrap_or(&out_path)),
        pass::Error::Host(e) => e,
    })?;
    let d = PyDict::new(py);
    let files = PyList::empty(py);
    for f in &outcome.files {
        let (changed, verified, damage, last, size) = match &f.end {
            pass::FileEnd::Changed { verified } => (true, *verified, PyList::empty(py), None, 0),
            pass::FileEnd::Finished { damage, last, file_size } => {
                let list = PyList::empty(py);
                for x in damage {
                    list.append(damage_tuple(py, x)?)?;
                }
                (false, 0, list, Some((last.records, last.end, last.digest)), *file_size)
            }
        };
        files.append((f.source, f.file, changed, verified, damage, last, size, f.events))?;
    }
    d.set_item("files", files)?;
    d.set_item("renamed", outcome.renamed)?;
    d.set_item("thinned", outcome.thinned)?;
    d.set_item("cropped", outcome.cropped)?;
    d.set_item("records", outcome.records)?;
    d.set_item("bytes", outcome.bytes)?;
    Ok(d)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    quiet_guarded_panics();
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add("FLAG_PEEKED", event_file::flags::PEEKED)?;
    m.add("FLAG_HAS_METADATA", event_file::flags::HAS_METADATA)?;
    m.add("FLAG_WIRE_NO_METADATA", event_file::flags::WIRE_NO_METADATA)?;
    m.add("FLAG_SCALAR", event_file::flags::SCALAR)?;
    m.add("NO_TAG", event_file::NO_TAG)?;
    m.add_function(wrap_pyfunction!(scan_file, m)?)?;
    m.add_class::<FileScanner>()?;
    m.add_class::<ScalarReader>()?;
    m.add_function(wrap_pyfunction!(scan_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(read_scalars, m)?)?;
    m.add_function(wrap_pyfunction!(peek, m)?)?;
    m.add_function(wrap_pyfunction!(retag, m)?)?;
    m.add_function(wrap_pyfunction!(validate_event, m)?)?;
    m.add_function(wrap_pyfunction!(plain_crc32c, m)?)?;
    m.add_function(wrap_pyfunction!(masked_crc32c, m)?)?;
    m.add_function(wrap_pyfunction!(encode_record, m)?)?;
    m.add_function(wrap_pyfunction!(rewrite_file, m)?)?;
    m.add_function(wrap_pyfunction!(_test_panic, m)?)?;
    Ok(())
}
