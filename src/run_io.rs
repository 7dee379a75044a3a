//! The streams a run reads its input from and writes its output to.

use std::io::{self, BufRead, BufReader, BufWriter, Write};

/// Standard input and output for a run; tests and the library API pass their own.
pub struct RunIo {
    pub stdin: Box<dyn BufRead + Send>,
    pub stdout: Box<dyn Write + Send>,
    pub stderr: Box<dyn Write + Send>,
}

impl std::fmt::Debug for RunIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunIo")
    }
}

impl RunIo {
    /// The process's own stdin, stdout and stderr, buffered. A run of the command line owns the
    /// process, so the allocator is tuned for it too ([`troop_worker::exec::tune_allocator`]).
    pub fn standard() -> Self {
        troop_worker::exec::tune_allocator();
        RunIo {
            stdin: Box::new(BufReader::with_capacity(1 << 16, io::stdin())),
            stdout: Box::new(BufWriter::with_capacity(1 << 16, io::stdout())),
            stderr: Box::new(BufWriter::with_capacity(1 << 14, io::stderr())),
        }
    }

    /// Empty input; output thrown away. For runs whose input comes from `:::` and whose output
    /// nobody reads (benchmarks, the demo).
    pub fn discard() -> Self {
        RunIo {
            stdin: Box::new(io::empty()),
            stdout: Box::new(io::sink()),
            stderr: Box::new(io::sink()),
        }
    }
}
