//! The library's error type.
//!
//! Every function whose outcome depends on the caller's data returns [`Result`]. Variants carry
//! the file, line or value involved and, where one exists, the fix, so that the command-line tool
//! can print them unchanged.

use std::path::PathBuf;

/// Errors returned by `feedforward`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two arrays whose shapes must agree do not, for instance a batch with 5 features given to
    /// a network whose first layer expects 784.
    #[error("shape mismatch: {0}")]
    Shape(String),

    /// An invalid setting: a zero-width layer, a softmax output under binary cross-entropy, a
    /// negative learning rate and the like.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Input data that cannot be used, with the file and the line, row or byte offset.
    #[error("{}: {message}", path.display())]
    Data {
        /// The file that contains the bad data, or a description such as `<memory>`.
        path: PathBuf,
        /// What is wrong, where, and what to do.
        message: String,
    },

    /// A model or checkpoint file that cannot be read or does not describe a valid network.
    #[error("{}: {message}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// Training produced a non-finite loss or gradient.
    #[error(
        "training diverged: the {quantity} became {value} at epoch {epoch}, batch {batch}; \
         lower the learning rate (for instance by a factor of 10) or enable gradient clipping"
    )]
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 1-based mini-batch within the epoch.
        batch: usize,
        /// What became non-finite: `loss` or `gradient norm`.
        quantity: &'static str,
        /// The non-finite value, printed as `NaN` or `inf`.
        value: f64,
    },
}

impl Error {
    /// Builds an [`Error::Data`] for `path`.
    pub fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Builds an [`Error::Model`] for `path`.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `std::result::Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
