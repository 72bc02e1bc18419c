//! Loading CSV files: a training or evaluation file with a target column, or a prediction file
//! with features only.
//!
//! A file is UTF-8 text (a byte-order mark is skipped), with `\n` or `\r\n` line ends, fields
//! quoted as RFC 4180 describes, and whitespace around fields ignored. Blank lines are skipped.
//! Line numbers in error messages are 1-based lines of the file, and column indexes are 0-based,
//! as in [`TargetColumn::Index`].

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ::csv::{ReaderBuilder, StringRecord};
use ndarray::Array2;

use super::labels::{quoted_list, sorted_class_names};
use super::{Dataset, Targets};
use crate::error::{Error, Result};

/// The column that contains the targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetColumn {
    /// The column whose header cell is this name. The file must have a header.
    Name(String),
    /// The column at this 0-based index.
    Index(usize),
}

impl FromStr for TargetColumn {
    type Err = Error;

    /// Parses a string of ASCII digits as a 0-based [`TargetColumn::Index`] and any other
    /// non-empty string as a [`TargetColumn::Name`]. Surrounding whitespace is ignored.
    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Config(
                "the target column is empty; give a column name or a 0-based column index".into(),
            ));
        }
        if text.bytes().all(|byte| byte.is_ascii_digit()) {
            return text.parse().map(TargetColumn::Index).map_err(|_| {
                Error::Config(format!("the target column index {text} is too large"))
            });
        }
        Ok(TargetColumn::Name(text.to_owned()))
    }
}

impl fmt::Display for TargetColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetColumn::Name(name) => write!(f, "\"{name}\""),
            TargetColumn::Index(index) => write!(f, "index {index}"),
        }
    }
}

/// The kind of values in the target column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Task {
    /// Class labels: any strings or numbers, each distinct value a class.
    #[default]
    Classification,
    /// Numbers, parsed as `f32`.
    Regression,
}

impl FromStr for Task {
    type Err = Error;

    /// Parses "classification" or "regression", ignoring ASCII case.
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "classification" => Ok(Task::Classification),
            "regression" => Ok(Task::Regression),
            _ => Err(Error::Config(format!(
                "unknown task \"{text}\"; expected \"classification\" or \"regression\""
            ))),
        }
    }
}

/// How to read a CSV file with a target column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The target column; `None` selects the last column.
    pub target: Option<TargetColumn>,
    /// Whether the target contains class labels or numbers.
    pub task: Task,
    /// Whether line 1 is a header; `None` detects it (see [`load_csv`]).
    pub has_header: Option<bool>,
    /// The field delimiter, `b','` by default.
    pub delimiter: u8,
    /// The classes of a trained model, in class-index order, to read the labels as; `None`
    /// takes the classes from the file's own labels. With classes given, a label outside them
    /// is an error naming its line, and a file may hold a single class, as a test set may.
    /// Regression ignores this.
    pub class_names: Option<Vec<String>>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            target: None,
            task: Task::Classification,
            has_header: None,
            delimiter: b',',
            class_names: None,
        }
    }
}

/// Loads a CSV file of features and one target column.
///
/// Every column other than the target is a feature and must hold numbers. The returned
/// [`Dataset`] has an `m x (columns - 1)` feature matrix, where `m` is the number of data rows,
/// and [`Targets::Classes`] or `m x 1` [`Targets::Values`] according to `options.task`.
/// Class indexes follow the sorted labels: numerically when every label is a number (so "2"
/// comes before "10"), otherwise by text, unless `options.class_names` sets the classes.
///
/// When `options.has_header` is `None`, line 1 is taken as a header if some feature column
/// contains text on line 1 and a number on line 2. In a one-line file, any text in a feature
/// column makes line 1 a header. A target given by name must appear on line 1, which makes
/// line 1 a header.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read. [`Error::Data`] naming the line, the column and
/// the fix for: an empty file, a header with no data rows, fewer than 2 columns, a target column
/// that does not exist, rows with a different number of fields than line 1, empty cells,
/// non-numeric feature cells, NaN or infinite values, text that is not UTF-8, a classification
/// target with a single class when `options.class_names` is `None`, and a label outside
/// `options.class_names` when it is set.
pub fn load_csv(path: &Path, options: &CsvOptions) -> Result<Dataset> {
    let file = File::open(path).map_err(|error| Error::io(path, error))?;
    load_csv_reader(file, path, options)
}

/// Loads CSV data from `reader` as [`load_csv`] does; `source` names the data in error
/// messages, for instance `<memory>`.
///
/// # Errors
///
/// As [`load_csv`]; read failures of `reader` are [`Error::Io`].
pub fn load_csv_reader<R: Read>(reader: R, source: &Path, options: &CsvOptions) -> Result<Dataset> {
    let table = Table::open(reader, source, options.delimiter)?;
    let width = table.width();
    if width < 2 {
        return Err(table.error(format!(
            "line {} has 1 column, but a file with targets needs at least 2 (features, then the \
             target); if the file uses a delimiter other than '{}', set the delimiter option",
            table.first_line(),
            options.delimiter.escape_ascii()
        )));
    }

    let (target, has_header) = table.resolve_target(options.target.as_ref(), options.has_header)?;
    let columns = Columns::new(has_header.then(|| record_strings(&table.first)));
    let feature_names = columns.names.as_ref().map(|names| {
        names
            .iter()
            .enumerate()
            .filter(|&(index, _)| index != target)
            .map(|(_, name)| name.clone())
            .collect()
    });

    let source = table.source.clone();
    let mut features = Vec::new();
    let mut rows = 0;
    let mut targets = TargetBuilder::new(options.task, options.class_names.as_deref());
    table.for_each_row(has_header, |line, record| {
        for (index, cell) in cells(record).enumerate() {
            if index == target {
                targets.push(cell, line, &columns, index, &source)?;
            } else {
                features.push(parse_number(
                    cell,
                    line,
                    &columns,
                    index,
                    Role::Feature,
                    &source,
                )?);
            }
        }
        rows += 1;
        Ok(())
    })?;

    if rows == 0 {
        return Err(Error::data(
            &source,
            "line 1 is a header and no data rows follow it; add rows of data below the header",
        ));
    }

    let features = Array2::from_shape_vec((rows, width - 1), features)
        .expect("every row has width - 1 features, because for_each_row checks each row's width");
    let targets = targets.finish(&columns.label(target), &source)?;
    Dataset::new(features, targets, feature_names)
}

/// Loads a CSV file in which every column is a feature, such as the input of a prediction.
///
/// Returns the `m x columns` feature matrix and the header's column names when the file has a
/// header. `has_header` works as [`CsvOptions::has_header`] does, and `None` detects a header
/// as [`load_csv`] does, looking at all columns. `delimiter` is the field delimiter, usually
/// `b','`.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read. [`Error::Data`] when the number of columns
/// differs from `n_features_expected` ("the model expects 784 features, this file has 5
/// columns"), and for the cell and row errors of [`load_csv`].
pub fn load_csv_features(
    path: &Path,
    n_features_expected: Option<usize>,
    has_header: Option<bool>,
    delimiter: u8,
) -> Result<(Array2<f32>, Option<Vec<String>>)> {
    let file = File::open(path).map_err(|error| Error::io(path, error))?;
    load_csv_features_reader(file, path, n_features_expected, has_header, delimiter)
}

/// Loads feature-only CSV data from `reader` as [`load_csv_features`] does; `source` names the
/// data in error messages.
///
/// # Errors
///
/// As [`load_csv_features`]; read failures of `reader` are [`Error::Io`].
pub fn load_csv_features_reader<R: Read>(
    reader: R,
    source: &Path,
    n_features_expected: Option<usize>,
    has_header: Option<bool>,
    delimiter: u8,
) -> Result<(Array2<f32>, Option<Vec<String>>)> {
    let table = Table::open(reader, source, delimiter)?;
    let width = table.width();
    if let Some(expected) = n_features_expected
        && width != expected
    {
        let hint = if width == expected + 1 {
            "; if one column is the target, remove it"
        } else {
            ""
        };
        return Err(table.error(format!(
            "the model expects {expected} features, this file has {width} columns (on line \
             {}){hint}",
            table.first_line()
        )));
    }

    let has_header =
        has_header.unwrap_or_else(|| detect_header(&table.first, table.second.as_ref(), None));
    let columns = Columns::new(has_header.then(|| record_strings(&table.first)));

    let source = table.source.clone();
    let mut features = Vec::new();
    let mut rows = 0;
    table.for_each_row(has_header, |line, record| {
        for (index, cell) in cells(record).enumerate() {
            features.push(parse_number(
                cell,
                line,
                &columns,
                index,
                Role::FeatureOnly,
                &source,
            )?);
        }
        rows += 1;
        Ok(())
    })?;

    if rows == 0 {
        return Err(Error::data(
            &source,
            "line 1 is a header and no data rows follow it; add rows of data below the header",
        ));
    }
    let features = Array2::from_shape_vec((rows, width), features)
        .expect("every row has width features, because for_each_row checks each row's width");
    Ok((features, columns.names))
}

/// A CSV source with its first two records read ahead, so that the header can be detected
/// before the data rows are parsed.
struct Table<R> {
    reader: ::csv::Reader<R>,
    source: PathBuf,
    first: StringRecord,
    second: Option<StringRecord>,
}

impl<R: Read> Table<R> {
    /// Reads the first two records.
    ///
    /// # Errors
    ///
    /// [`Error::Data`] when there is no record at all.
    fn open(reader: R, source: &Path, delimiter: u8) -> Result<Self> {
        let mut reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(reader);

        let mut first = StringRecord::new();
        if !read_record(&mut reader, &mut first, source)? {
            return Err(Error::data(
                source,
                "the file is empty; expected rows of CSV data",
            ));
        }
        let mut second = StringRecord::new();
        let second = read_record(&mut reader, &mut second, source)?.then_some(second);

        Ok(Table {
            reader,
            source: source.to_owned(),
            first,
            second,
        })
    }

    /// Returns the number of fields on the first line, which every row must match.
    fn width(&self) -> usize {
        self.first.len()
    }

    fn first_line(&self) -> u64 {
        line_of(&self.first)
    }

    fn error(&self, message: String) -> Error {
        Error::data(&self.source, message)
    }

    /// Returns the index of the target column and whether line 1 is a header.
    fn resolve_target(
        &self,
        target: Option<&TargetColumn>,
        has_header: Option<bool>,
    ) -> Result<(usize, bool)> {
        let width = self.width();
        let detect = |target: usize| {
            has_header
                .unwrap_or_else(|| detect_header(&self.first, self.second.as_ref(), Some(target)))
        };

        match target {
            None => Ok((width - 1, detect(width - 1))),
            Some(TargetColumn::Index(index)) if *index < width => Ok((*index, detect(*index))),
            Some(TargetColumn::Index(index)) => Err(self.error(format!(
                "the target column index {index} is out of range: line {} has {width} columns, \
                 indexes 0 to {}",
                self.first_line(),
                width - 1
            ))),
            Some(TargetColumn::Name(name)) => self.resolve_target_name(name, has_header),
        }
    }

    fn resolve_target_name(&self, name: &str, has_header: Option<bool>) -> Result<(usize, bool)> {
        if has_header == Some(false) {
            return Err(self.error(format!(
                "the target column is given by name (\"{name}\"), but the file is read without \
                 a header; give the column's 0-based index instead"
            )));
        }

        let matches: Vec<usize> = cells(&self.first)
            .enumerate()
            .filter(|&(_, cell)| cell == name)
            .map(|(index, _)| index)
            .collect();
        match matches.as_slice() {
            [index] => Ok((*index, true)),
            [] => {
                let is_header = has_header.unwrap_or_else(|| {
                    detect_header(&self.first, self.second.as_ref(), Some(self.width() - 1))
                });
                if is_header {
                    Err(self.error(format!(
                        "there is no target column named \"{name}\"; the columns on line {} \
                         are {}",
                        self.first_line(),
                        quoted_list(&record_strings(&self.first))
                    )))
                } else {
                    Err(self.error(format!(
                        "there is no target column named \"{name}\": line {} contains data, not \
                         a header, so columns have no names; give the target column's 0-based \
                         index instead",
                        self.first_line()
                    )))
                }
            }
            [first, second, ..] => Err(self.error(format!(
                "the target column name \"{name}\" is ambiguous: columns {first} and {second} \
                 both have it; give the column's 0-based index instead"
            ))),
        }
    }

    /// Calls `visit` with the line number and fields of each data row, after checking that the
    /// row has as many fields as line 1. Line 1 is skipped when it is a header.
    fn for_each_row(
        mut self,
        skip_first: bool,
        mut visit: impl FnMut(u64, &StringRecord) -> Result<()>,
    ) -> Result<()> {
        let width = self.width();
        let first_line = self.first_line();
        let source = self.source.clone();
        let mut check_and_visit = |record: &StringRecord| {
            let line = line_of(record);
            if record.len() != width {
                return Err(Error::data(
                    &source,
                    format!(
                        "line {line} has {} fields, expected {width} as on line {first_line}; \
                         check that line for a missing or extra delimiter, and quote fields \
                         that contain one",
                        record.len()
                    ),
                ));
            }
            visit(line, record)
        };

        if !skip_first {
            check_and_visit(&self.first)?;
        }
        if let Some(second) = &self.second {
            check_and_visit(second)?;
        }
        let mut record = StringRecord::new();
        while read_record(&mut self.reader, &mut record, &self.source)? {
            check_and_visit(&record)?;
        }
        Ok(())
    }
}

/// Reads the next record into `record`; returns `false` at the end of the data.
fn read_record<R: Read>(
    reader: &mut ::csv::Reader<R>,
    record: &mut StringRecord,
    source: &Path,
) -> Result<bool> {
    reader
        .read_record(record)
        .map_err(|error| csv_error(error, source))
}

fn csv_error(error: ::csv::Error, source: &Path) -> Error {
    let line = error.position().map_or(0, |position| position.line());
    let text = error.to_string();
    match error.into_kind() {
        ::csv::ErrorKind::Io(io_error) => Error::io(source, io_error),
        ::csv::ErrorKind::Utf8 { err, .. } => Error::data(
            source,
            format!(
                "line {line}, column index {}: the text is not valid UTF-8; save the file as UTF-8",
                err.field()
            ),
        ),
        _ => Error::data(source, format!("line {line}: invalid CSV: {text}")),
    }
}

/// Returns the 1-based line on which `record` starts.
fn line_of(record: &StringRecord) -> u64 {
    // The csv reader sets the position of every record it reads.
    record.position().map_or(0, |position| position.line())
}

fn record_strings(record: &StringRecord) -> Vec<String> {
    cells(record).map(str::to_owned).collect()
}

/// Returns the fields of `record` without surrounding whitespace.
///
/// The csv crate can trim fields itself (`Trim::All`), but it copies every record to do so. On
/// a 20,000 x 785 file of integers that made reading the records about 3.5 times slower (1.46 s
/// against 0.39 s, test profile, 2 shared cores), while slicing each field costs nothing.
fn cells(record: &StringRecord) -> impl Iterator<Item = &str> {
    record.iter().map(str::trim)
}

/// Decides whether `first` is a header: some feature column has text (neither empty nor a
/// number) on line 1 and a number on line 2. Without a second line, any text on line 1 makes it
/// a header. `target` is excluded from the feature columns.
fn detect_header(
    first: &StringRecord,
    second: Option<&StringRecord>,
    target: Option<usize>,
) -> bool {
    let is_text = |cell: &str| !cell.is_empty() && cell.parse::<f32>().is_err();
    let is_number = |cell: &str| cell.trim().parse::<f32>().is_ok();
    cells(first)
        .enumerate()
        .filter(|&(index, _)| Some(index) != target)
        .any(|(index, cell)| {
            is_text(cell) && second.is_none_or(|second| second.get(index).is_some_and(is_number))
        })
}

/// Column names, when the file has a header, for error messages.
struct Columns {
    names: Option<Vec<String>>,
}

impl Columns {
    fn new(names: Option<Vec<String>>) -> Self {
        Columns { names }
    }

    /// Describes column `index` as `column "name" (index 2)`, or `column index 2` without a
    /// header.
    fn label(&self, index: usize) -> String {
        match self.names.as_ref().and_then(|names| names.get(index)) {
            Some(name) => format!("column \"{name}\" (index {index})"),
            None => format!("column index {index}"),
        }
    }
}

/// The purpose of a numeric cell, which selects the advice in error messages.
#[derive(Clone, Copy)]
enum Role {
    /// A feature in a file that also has a target column.
    Feature,
    /// A column of a features-only file.
    FeatureOnly,
    /// The target column under [`Task::Regression`].
    RegressionTarget,
}

/// Parses a numeric cell; rejects empty, non-numeric and non-finite cells. The cell is in
/// column `index` of `columns`.
fn parse_number(
    cell: &str,
    line: u64,
    columns: &Columns,
    index: usize,
    role: Role,
    source: &Path,
) -> Result<f32> {
    // The column's description is built only on error, because this runs for every cell.
    let column = || columns.label(index);
    if cell.is_empty() {
        let column = column();
        return Err(Error::data(
            source,
            format!("line {line}, {column}: the cell is empty; fill in or remove missing values"),
        ));
    }
    let value: f32 = cell.parse().map_err(|_| {
        let advice = match role {
            Role::Feature if line == 1 => {
                "if line 1 is a header, set the header option, and otherwise select the column \
                 that contains the labels as the target"
            }
            Role::Feature => {
                "every column except the target must be numeric, so if this column contains \
                 the labels, select it as the target"
            }
            Role::FeatureOnly if line == 1 => "if line 1 is a header, set the header option",
            Role::FeatureOnly => "every column must be numeric",
            Role::RegressionTarget => {
                "regression targets must be numbers; use classification for text labels"
            }
        };
        Error::data(
            source,
            format!(
                "line {line}, {}: \"{cell}\" is not a number; {advice}",
                column()
            ),
        )
    })?;
    if !value.is_finite() {
        let column = column();
        return Err(Error::data(
            source,
            format!(
                "line {line}, {column}: the value \"{cell}\" is not finite (NaN, infinity, or \
                 beyond the f32 range); remove or replace it"
            ),
        ));
    }
    Ok(value)
}

/// Collects the target column: class labels, interned as they come or matched against given
/// classes, or numbers.
enum TargetBuilder {
    Classes {
        /// Index of each row's label in `first_seen`.
        ids: Vec<usize>,
        /// Distinct labels in the order they first appear.
        first_seen: Vec<String>,
        id_of: HashMap<String, usize>,
    },
    KnownClasses {
        /// Index of each row's label in `class_names`.
        labels: Vec<usize>,
        class_names: Vec<String>,
        index_of: HashMap<String, usize>,
    },
    Values(Vec<f32>),
}

impl TargetBuilder {
    fn new(task: Task, class_names: Option<&[String]>) -> Self {
        match (task, class_names) {
            (Task::Classification, None) => TargetBuilder::Classes {
                ids: Vec::new(),
                first_seen: Vec::new(),
                id_of: HashMap::new(),
            },
            (Task::Classification, Some(names)) => TargetBuilder::KnownClasses {
                labels: Vec::new(),
                class_names: names.to_vec(),
                index_of: names
                    .iter()
                    .enumerate()
                    .map(|(index, name)| (name.clone(), index))
                    .collect(),
            },
            (Task::Regression, _) => TargetBuilder::Values(Vec::new()),
        }
    }

    /// Adds the target `cell` from column `index` of `columns`.
    fn push(
        &mut self,
        cell: &str,
        line: u64,
        columns: &Columns,
        index: usize,
        source: &Path,
    ) -> Result<()> {
        let is_classes = !matches!(self, TargetBuilder::Values(_));
        if is_classes && cell.is_empty() {
            let column = columns.label(index);
            return Err(Error::data(
                source,
                format!(
                    "line {line}, {column}: the class label is empty; give every row a label or \
                     remove the row"
                ),
            ));
        }
        match self {
            TargetBuilder::Classes {
                ids,
                first_seen,
                id_of,
            } => {
                let id = match id_of.get(cell) {
                    Some(&id) => id,
                    None => {
                        let id = first_seen.len();
                        first_seen.push(cell.to_owned());
                        id_of.insert(cell.to_owned(), id);
                        id
                    }
                };
                ids.push(id);
            }
            TargetBuilder::KnownClasses {
                labels,
                class_names,
                index_of,
            } => {
                let Some(&label) = index_of.get(cell) else {
                    let column = columns.label(index);
                    return Err(Error::data(
                        source,
                        format!(
                            "line {line}, {column}: class label \"{cell}\" is not one of the \
                             model's {} classes ({}); remove the rows of other classes, or use \
                             a model trained on them",
                            class_names.len(),
                            quoted_list(class_names)
                        ),
                    ));
                };
                labels.push(label);
            }
            TargetBuilder::Values(values) => values.push(parse_number(
                cell,
                line,
                columns,
                index,
                Role::RegressionTarget,
                source,
            )?),
        }
        Ok(())
    }

    /// Builds the targets; `column` describes the target column for error messages.
    fn finish(self, column: &str, source: &Path) -> Result<Targets> {
        match self {
            TargetBuilder::Classes {
                ids, first_seen, ..
            } => {
                if first_seen.len() < 2 {
                    let only = first_seen.first().map_or("", String::as_str);
                    return Err(Error::data(
                        source,
                        format!(
                            "the target, {column}, has a single class (\"{only}\") in all {} \
                             rows, but classification needs at least 2; check the target \
                             column, or use regression for numeric targets",
                            ids.len()
                        ),
                    ));
                }
                let class_names = sorted_class_names(first_seen.iter().map(String::as_str));
                let sorted_index: HashMap<&str, usize> = class_names
                    .iter()
                    .enumerate()
                    .map(|(index, name)| (name.as_str(), index))
                    .collect();
                let remap: Vec<usize> = first_seen
                    .iter()
                    .map(|label| sorted_index[label.as_str()])
                    .collect();
                Ok(Targets::Classes {
                    labels: ids.into_iter().map(|id| remap[id]).collect(),
                    class_names,
                })
            }
            TargetBuilder::KnownClasses {
                labels,
                class_names,
                ..
            } => Ok(Targets::Classes {
                labels,
                class_names,
            }),
            TargetBuilder::Values(values) => {
                let rows = values.len();
                let values = Array2::from_shape_vec((rows, 1), values)
                    .expect("a column of `rows` values fits `rows x 1`");
                Ok(Targets::Values(values))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use ndarray::array;
    use proptest::prelude::*;

    use super::*;

    fn load(text: &str, options: &CsvOptions) -> Result<Dataset> {
        load_csv_reader(text.as_bytes(), Path::new("t.csv"), options)
    }

    fn load_default(text: &str) -> Result<Dataset> {
        load(text, &CsvOptions::default())
    }

    fn error_of(text: &str, options: &CsvOptions) -> String {
        match load(text, options) {
            Ok(data) => panic!("expected an error, loaded {data:?}"),
            Err(error) => error.to_string(),
        }
    }

    fn default_error(text: &str) -> String {
        error_of(text, &CsvOptions::default())
    }

    fn classes(data: &Dataset) -> (Vec<usize>, Vec<String>) {
        match &data.targets {
            Targets::Classes {
                labels,
                class_names,
            } => (labels.clone(), class_names.clone()),
            Targets::Values(_) => panic!("expected class targets"),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|&item| item.to_owned()).collect()
    }

    fn with_target(target: &str) -> CsvOptions {
        CsvOptions {
            target: Some(target.parse().unwrap()),
            ..CsvOptions::default()
        }
    }

    fn regression() -> CsvOptions {
        CsvOptions {
            task: Task::Regression,
            ..CsvOptions::default()
        }
    }

    #[test]
    fn target_column_parses() {
        assert_eq!("3".parse::<TargetColumn>().unwrap(), TargetColumn::Index(3));
        assert_eq!(
            " species ".parse::<TargetColumn>().unwrap(),
            TargetColumn::Name("species".into())
        );
        assert_eq!(
            "-1".parse::<TargetColumn>().unwrap(),
            TargetColumn::Name("-1".into())
        );
        assert!("".parse::<TargetColumn>().is_err());
        let error = "99999999999999999999999"
            .parse::<TargetColumn>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("too large"), "{error}");
    }

    #[test]
    fn task_parses() {
        assert_eq!(
            "classification".parse::<Task>().unwrap(),
            Task::Classification
        );
        assert_eq!("Regression".parse::<Task>().unwrap(), Task::Regression);
        let error = "clustering".parse::<Task>().unwrap_err().to_string();
        assert!(error.contains("\"clustering\""), "{error}");
    }

    #[test]
    fn header_detected() {
        let data = load_default("a,b,label\n1,2,x\n3,4,y\n").unwrap();
        assert_eq!(data.features, array![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(data.feature_names, Some(strings(&["a", "b"])));
        assert_eq!(classes(&data), (vec![0, 1], strings(&["x", "y"])));
    }

    #[test]
    fn no_header_detected() {
        let data = load_default("1,2,0\n3,4,1\n5,6,0\n").unwrap();
        assert_eq!(data.features, array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
        assert_eq!(data.feature_names, None);
        assert_eq!(classes(&data), (vec![0, 1, 0], strings(&["0", "1"])));
    }

    #[test]
    fn header_with_numeric_names_needs_option() {
        // Line 1 is all numbers, so it is only a header when the caller says so.
        let text = "1,2,3\n4,5,a\n6,7,b\n";
        let detected = load_default(text).unwrap();
        assert_eq!(detected.len(), 3);
        assert_eq!(detected.feature_names, None);

        let options = CsvOptions {
            has_header: Some(true),
            ..CsvOptions::default()
        };
        let data = load(text, &options).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data.feature_names, Some(strings(&["1", "2"])));
    }

    #[test]
    fn header_forced_off_reports_text() {
        let options = CsvOptions {
            has_header: Some(false),
            ..CsvOptions::default()
        };
        let error = error_of("a,b,label\n1,2,x\n3,4,y\n", &options);
        assert!(error.contains("line 1, column index 0"), "{error}");
        assert!(error.contains("\"a\" is not a number"), "{error}");
        assert!(error.contains("header option"), "{error}");
    }

    #[test]
    fn byte_order_mark_stripped() {
        let data = load_default("\u{feff}width,height,kind\n1,2,x\n3,4,y\n").unwrap();
        assert_eq!(data.feature_names, Some(strings(&["width", "height"])));

        let data = load_default("\u{feff}1,2,x\n3,4,y\n").unwrap();
        assert_eq!(data.features, array![[1.0, 2.0], [3.0, 4.0]]);
    }

    #[test]
    fn crlf_line_ends() {
        let data = load_default("a,b,label\r\n1,2,x\r\n3,4,y\r\n").unwrap();
        assert_eq!(data.features, array![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(classes(&data).1, strings(&["x", "y"]));
    }

    #[test]
    fn quoted_fields() {
        let text = "\"a\",\"b, c\",label\n\"1.5\",2,\"cat, black\"\n3,\"4\",\"dog \"\"rex\"\"\"\n";
        let data = load_default(text).unwrap();
        assert_eq!(data.feature_names, Some(strings(&["a", "b, c"])));
        assert_eq!(data.features, array![[1.5, 2.0], [3.0, 4.0]]);
        assert_eq!(
            classes(&data),
            (vec![0, 1], strings(&["cat, black", "dog \"rex\""]))
        );
    }

    #[test]
    fn whitespace_and_blank_lines_ignored() {
        let data = load_default("a , b , label\n\n 1 , 2 , x \n\n3,4,y\n\n").unwrap();
        assert_eq!(data.feature_names, Some(strings(&["a", "b"])));
        assert_eq!(data.features, array![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(classes(&data).1, strings(&["x", "y"]));
    }

    #[test]
    fn no_final_newline() {
        let data = load_default("1,2,0\n3,4,1").unwrap();
        assert_eq!(data.len(), 2);
    }

    #[test]
    fn string_labels_sorted() {
        let data = load_default("x,y\n1,dog\n2,cat\n3,emu\n4,cat\n").unwrap();
        assert_eq!(
            classes(&data),
            (vec![1, 0, 2, 0], strings(&["cat", "dog", "emu"]))
        );
    }

    #[test]
    fn numeric_labels_sorted_numerically() {
        let data = load_default("1,10\n2,2\n3,1\n4,2\n").unwrap();
        assert_eq!(
            classes(&data),
            (vec![2, 1, 0, 1], strings(&["1", "2", "10"]))
        );
    }

    #[test]
    fn regression_targets() {
        let data = load("a,b,y\n1,2,0.5\n3,4,-1e3\n", &regression()).unwrap();
        assert_eq!(data.targets, Targets::Values(array![[0.5], [-1000.0]]));
        assert_eq!(data.n_classes(), None);
        assert_eq!(data.feature_names, Some(strings(&["a", "b"])));
    }

    #[test]
    fn regression_target_must_be_number() {
        let error = error_of("a,b,y\n1,2,0.5\n3,4,high\n", &regression());
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("column \"y\" (index 2)"), "{error}");
        assert!(error.contains("\"high\" is not a number"), "{error}");
    }

    #[test]
    fn target_by_name() {
        let data = load("label,a,b\nx,1,2\ny,3,4\n", &with_target("label")).unwrap();
        assert_eq!(data.features, array![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(data.feature_names, Some(strings(&["a", "b"])));
        assert_eq!(classes(&data).1, strings(&["x", "y"]));
    }

    #[test]
    fn target_by_index() {
        let data = load("1,0,2\n3,1,4\n", &with_target("1")).unwrap();
        assert_eq!(data.features, array![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(classes(&data), (vec![0, 1], strings(&["0", "1"])));
    }

    #[test]
    fn target_index_with_text_labels_detects_header() {
        // Column 0 contains text labels, so only the other columns decide the header.
        let data = load("kind,a\nx,1\ny,2\n", &with_target("0")).unwrap();
        assert_eq!(data.feature_names, Some(strings(&["a"])));
        assert_eq!(data.features, array![[1.0], [2.0]]);
    }

    #[test]
    fn semicolon_delimiter() {
        let options = CsvOptions {
            delimiter: b';',
            ..CsvOptions::default()
        };
        let data = load("a;b;label\n1,5;2;x\n3;4;y\n", &options);
        // "1,5" is a decimal comma, which is not a number.
        let error = data.unwrap_err().to_string();
        assert!(error.contains("line 2, column \"a\" (index 0)"), "{error}");
        assert!(error.contains("\"1,5\" is not a number"), "{error}");

        let data = load("a;b;label\n1.5;2;x\n3;4;y\n", &options).unwrap();
        assert_eq!(data.features, array![[1.5, 2.0], [3.0, 4.0]]);
    }

    #[test]
    fn load_csv_reads_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"a,b,label\n1,2,x\n3,4,y\n").unwrap();
        let data = load_csv(file.path(), &CsvOptions::default()).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data.n_classes(), Some(2));
    }

    #[test]
    fn missing_file_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.csv");
        let error = load_csv(&path, &CsvOptions::default()).unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{error:?}");
        assert!(error.to_string().contains("absent.csv"), "{error}");
    }

    #[test]
    fn error_empty_file() {
        for text in ["", "\n", "\r\n\r\n"] {
            let error = default_error(text);
            assert!(error.starts_with("t.csv: "), "{error}");
            assert!(error.contains("the file is empty"), "{text:?}: {error}");
        }
    }

    #[test]
    fn error_header_without_data() {
        let error = default_error("a,b,label\n");
        assert!(error.contains("line 1 is a header"), "{error}");
        assert!(error.contains("no data rows"), "{error}");

        let options = CsvOptions {
            has_header: Some(true),
            ..CsvOptions::default()
        };
        let error = error_of("1,2,3\n", &options);
        assert!(error.contains("no data rows"), "{error}");
    }

    #[test]
    fn error_ragged_row() {
        let error = default_error("a,b,label\n1,2,x\n3,4,5,y\n");
        assert!(error.contains("line 3 has 4 fields"), "{error}");
        assert!(error.contains("expected 3 as on line 1"), "{error}");
        assert!(error.contains("delimiter"), "{error}");

        let error = default_error("1,2,x\n3,4,y\n5,z\n");
        assert!(error.contains("line 3 has 2 fields, expected 3"), "{error}");
    }

    #[test]
    fn error_ragged_second_row() {
        let error = default_error("1,2,x\n3,y\n5,6,z\n");
        assert!(error.contains("line 2 has 2 fields, expected 3"), "{error}");
    }

    #[test]
    fn error_non_numeric_feature() {
        let error = default_error("a,b,label\n1,2,x\n3,four,y\n");
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("column \"b\" (index 1)"), "{error}");
        assert!(error.contains("\"four\" is not a number"), "{error}");
    }

    #[test]
    fn error_non_numeric_without_header() {
        let error = default_error("1,2,x\n3,4,y\n5,6,z\n7,?,w\n");
        assert!(error.contains("line 4, column index 1"), "{error}");
        assert!(error.contains("\"?\" is not a number"), "{error}");
    }

    #[test]
    fn error_empty_cell() {
        let error = default_error("a,b,label\n1,2,x\n3,,y\n");
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("column \"b\" (index 1)"), "{error}");
        assert!(error.contains("the cell is empty"), "{error}");
    }

    #[test]
    fn error_empty_cell_on_second_line() {
        // An empty cell on line 2 must not hide the header on line 1.
        let error = default_error("a,b,label\n1,,x\n3,4,y\n");
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("column \"b\" (index 1)"), "{error}");
        assert!(error.contains("the cell is empty"), "{error}");
    }

    #[test]
    fn error_empty_label() {
        let error = default_error("a,label\n1,x\n2,\n");
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("column \"label\" (index 1)"), "{error}");
        assert!(error.contains("class label is empty"), "{error}");
    }

    #[test]
    fn error_nan_value() {
        let error = default_error("a,b,label\n1,2,x\n3,NaN,y\n");
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("column \"b\" (index 1)"), "{error}");
        assert!(error.contains("\"NaN\" is not finite"), "{error}");
    }

    #[test]
    fn error_infinite_value() {
        for cell in ["inf", "-infinity", "1e39"] {
            let error = default_error(&format!("1,2,x\n{cell},4,y\n"));
            assert!(error.contains("line 2, column index 0"), "{error}");
            assert!(
                error.contains(&format!("\"{cell}\" is not finite")),
                "{error}"
            );
        }
    }

    #[test]
    fn error_nan_regression_target() {
        let error = error_of("1,2,0.5\n3,4,nan\n", &regression());
        assert!(error.contains("line 2, column index 2"), "{error}");
        assert!(error.contains("not finite"), "{error}");
    }

    #[test]
    fn error_missing_target_name() {
        let error = error_of("a,b,label\n1,2,x\n3,4,y\n", &with_target("species"));
        assert!(
            error.contains("no target column named \"species\""),
            "{error}"
        );
        assert!(error.contains("\"a\", \"b\", \"label\""), "{error}");
    }

    #[test]
    fn error_target_name_without_header() {
        let error = error_of("1,2,x\n3,4,y\n", &with_target("species"));
        assert!(
            error.contains("no target column named \"species\""),
            "{error}"
        );
        assert!(error.contains("line 1 contains data"), "{error}");
        assert!(error.contains("0-based index"), "{error}");

        let options = CsvOptions {
            has_header: Some(false),
            ..with_target("label")
        };
        let error = error_of("a,b,label\n1,2,x\n", &options);
        assert!(error.contains("without a header"), "{error}");
    }

    #[test]
    fn error_target_name_ambiguous() {
        let error = error_of("y,a,y\n1,2,3\n4,5,6\n", &with_target("y"));
        assert!(error.contains("ambiguous"), "{error}");
        assert!(error.contains("columns 0 and 2"), "{error}");
    }

    #[test]
    fn error_target_index_out_of_range() {
        let error = error_of("1,2,x\n3,4,y\n", &with_target("3"));
        assert!(error.contains("index 3 is out of range"), "{error}");
        assert!(error.contains("3 columns, indexes 0 to 2"), "{error}");
    }

    #[test]
    fn error_single_class() {
        let error = default_error("a,label\n1,x\n2,x\n3,x\n");
        assert!(error.contains("column \"label\" (index 1)"), "{error}");
        assert!(error.contains("single class (\"x\")"), "{error}");
        assert!(error.contains("all 3 rows"), "{error}");
        assert!(error.contains("regression"), "{error}");
    }

    fn with_model_classes(names: &[&str]) -> CsvOptions {
        CsvOptions {
            class_names: Some(strings(names)),
            ..CsvOptions::default()
        }
    }

    #[test]
    fn model_classes_set_indexes() {
        let data = load(
            "a,label\n1,y\n2,x\n3,y\n",
            &with_model_classes(&["y", "z", "x"]),
        )
        .unwrap();
        assert_eq!(classes(&data), (vec![0, 2, 0], strings(&["y", "z", "x"])));
    }

    #[test]
    fn model_classes_allow_single_class() {
        let data = load("a,label\n1,x\n2,x\n", &with_model_classes(&["x", "y"])).unwrap();
        assert_eq!(classes(&data), (vec![0, 0], strings(&["x", "y"])));
    }

    #[test]
    fn error_label_outside_model_classes() {
        let error = error_of("a,label\n1,x\n2,w\n", &with_model_classes(&["x", "y"]));
        assert!(error.starts_with("t.csv: line 3"), "{error}");
        assert!(error.contains("column \"label\" (index 1)"), "{error}");
        assert!(
            error.contains("\"w\" is not one of the model's 2 classes"),
            "{error}"
        );
        assert!(error.contains("(\"x\", \"y\")"), "{error}");

        let error = error_of("a,label\n1,x\n2,\n", &with_model_classes(&["x", "y"]));
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("class label is empty"), "{error}");
    }

    #[test]
    fn error_single_column() {
        let error = default_error("1\n2\n3\n");
        assert!(error.contains("line 1 has 1 column"), "{error}");
        assert!(error.contains("at least 2"), "{error}");

        let error = default_error("a;b;label\n1;2;x\n");
        assert!(error.contains("delimiter other than ','"), "{error}");
    }

    #[test]
    fn error_invalid_utf8() {
        let bytes = b"a,b,label\n1,2,x\n3,4,\xff\xfe\n";
        let error = load_csv_reader(&bytes[..], Path::new("t.csv"), &CsvOptions::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 3, column index 2"), "{error}");
        assert!(error.contains("not valid UTF-8"), "{error}");
    }

    #[test]
    fn line_numbers_count_quoted_newlines() {
        // The quoted label on line 2 spans two lines, so the bad cell is on line 4.
        let error = default_error("a,label\n1,\"two\nlines\"\nx,y\n");
        assert!(error.contains("line 4"), "{error}");
        assert!(error.contains("\"x\" is not a number"), "{error}");
    }

    #[test]
    fn features_with_header() {
        let (features, names) = load_csv_features_reader(
            "a,b\n1,2\n3,4\n".as_bytes(),
            Path::new("p.csv"),
            Some(2),
            None,
            b',',
        )
        .unwrap();
        assert_eq!(features, array![[1.0, 2.0], [3.0, 4.0]]);
        assert_eq!(names, Some(strings(&["a", "b"])));
    }

    #[test]
    fn features_without_header_from_file() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"1,2,3\r\n4,5,6\r\n").unwrap();
        let (features, names) = load_csv_features(file.path(), None, None, b',').unwrap();
        assert_eq!(features, array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(names, None);
    }

    #[test]
    fn features_wrong_width() {
        let error = load_csv_features_reader(
            "1,2,3,4,5\n".as_bytes(),
            Path::new("p.csv"),
            Some(784),
            None,
            b',',
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("the model expects 784 features, this file has 5 columns"),
            "{error}"
        );
        assert!(error.contains("line 1"), "{error}");

        let error = load_csv_features_reader(
            "1,2,3\n".as_bytes(),
            Path::new("p.csv"),
            Some(2),
            None,
            b',',
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("remove it"), "{error}");
    }

    #[test]
    fn features_errors() {
        let load = |text: &str| {
            load_csv_features_reader(text.as_bytes(), Path::new("p.csv"), None, None, b',')
                .unwrap_err()
                .to_string()
        };
        let error = load("");
        assert!(error.contains("the file is empty"), "{error}");
        let error = load("a,b\n");
        assert!(error.contains("no data rows"), "{error}");
        let error = load("a,b\n1,2\n3\n");
        assert!(error.contains("line 3 has 1 fields, expected 2"), "{error}");
        let error = load("a,b\n1,2\n3,x\n");
        assert!(error.contains("line 3, column \"b\" (index 1)"), "{error}");
        assert!(error.contains("\"x\" is not a number"), "{error}");
        let error = load("1,2\n3,inf\n");
        assert!(error.contains("line 2, column index 1"), "{error}");
        assert!(error.contains("not finite"), "{error}");
    }

    fn all_options() -> Vec<CsvOptions> {
        let mut options = Vec::new();
        for target in [
            None,
            Some(TargetColumn::Index(0)),
            Some(TargetColumn::Name("b".into())),
        ] {
            for task in [Task::Classification, Task::Regression] {
                for has_header in [None, Some(true), Some(false)] {
                    options.push(CsvOptions {
                        target: target.clone(),
                        task,
                        has_header,
                        delimiter: b',',
                        class_names: None,
                    });
                }
            }
        }
        options
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for options in all_options() {
                let _ = load_csv_reader(&bytes[..], Path::new("p.csv"), &options);
            }
            let _ = load_csv_features_reader(&bytes[..], Path::new("p.csv"), Some(2), None, b',');
        }

        #[test]
        fn csv_like_text_never_panics(text in "[0-9ab.,;\"\\n\\r \u{feff}e-]{0,200}") {
            for options in all_options() {
                if let Ok(data) = load_csv_reader(text.as_bytes(), Path::new("p.csv"), &options) {
                    prop_assert_eq!(data.targets.len(), data.len());
                    prop_assert!(data.features.iter().all(|value| value.is_finite()));
                }
            }
            let _ = load_csv_features_reader(text.as_bytes(), Path::new("p.csv"), None, None, b',');
        }
    }
}
