//! Tables for people: columns two spaces apart, every cell made terminal-safe.

use std::borrow::Cow;
use std::io::{BufWriter, Write};

use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};
use unicode_width::UnicodeWidthStr;

use crate::error::{Error, Result};

/// Up to this many rows, a table too wide for the terminal is fitted to it (by comfy-table).
/// Beyond, nobody reads it whole on a screen, and fitting would cost more than it is worth.
const FITTED_ROWS: usize = 1000;

/// Columns apart by two spaces, flush left: plain to read, easy to cut.
const GAP: usize = 2;

/// The wrapped column is fitted to the terminal only if that leaves it this wide (or as wide
/// as its widest cell, if narrower); otherwise the lines run longer than the terminal.
const WRAP_MIN: usize = 24;

/// Where a table goes: stdout (data), or stderr (what a question is about, when stdout is
/// for JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Prints `rows` under `header` on stdout, every cell made terminal-safe, in columns two spaces
/// apart. On a terminal too narrow for it, the table is fitted to its width by wrapping the
/// `wrap` column (free text) only: ids and dates stay whole, to be read and copied.
pub fn print(header: &[&str], rows: Vec<Vec<String>>, wrap: Option<usize>) -> Result<()> {
    print_to(Stream::Stdout, header, rows, wrap)
}

/// [`print`] to either stream, of rows in memory.
pub fn print_to(
    stream: Stream,
    header: &[&str],
    rows: Vec<Vec<String>>,
    wrap: Option<usize>,
) -> Result<()> {
    let mut table = Streamed::new(stream, header, wrap);
    for row in &rows {
        table.measure(row);
    }
    for row in rows {
        table.print(row)?;
    }
    table.finish()
}

/// A table printed from rows that arrive twice: once to measure the columns, once to print
/// them. Only the column widths are kept between the two (and, for a table small enough to fit
/// to the terminal, its rows), so a table of a million rows takes no more memory than one of
/// ten. Rows must arrive the same both times (a store lists both passes from one snapshot).
pub struct Streamed<'h> {
    stream: Stream,
    header: &'h [&'h str],
    wrap: Option<usize>,
    widths: Vec<usize>,
    rows: usize,
    printer: Option<Printer>,
}

enum Printer {
    /// Fitted to the terminal by comfy-table, which needs every row: at most [`FITTED_ROWS`].
    Fitted {
        columns: usize,
        column: usize,
        rows: Vec<Vec<String>>,
    },
    /// Written out line by line.
    Direct {
        out: BufWriter<Box<dyn Write>>,
        line: String,
    },
}

impl<'h> Streamed<'h> {
    pub fn new(stream: Stream, header: &'h [&'h str], wrap: Option<usize>) -> Self {
        Streamed {
            stream,
            header,
            wrap,
            widths: header.iter().map(|h| h.width()).collect(),
            rows: 0,
            printer: None,
        }
    }

    /// The first pass: one row's cells, as they will be printed.
    pub fn measure(&mut self, row: &[String]) {
        for (width, cell) in self.widths.iter_mut().zip(row) {
            *width = (*width).max(cell_width(cell));
        }
        self.rows += 1;
    }

    /// The first pass, for a caller that knows the widths of a row's cells without making
    /// them (as [`cell_width`] measures them).
    pub fn measure_widths(&mut self, row: &[usize]) {
        for (width, cell) in self.widths.iter_mut().zip(row) {
            *width = (*width).max(*cell);
        }
        self.rows += 1;
    }

    /// How many rows were measured.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The second pass: prints one row (the header first, before the first row).
    pub fn print(&mut self, mut row: Vec<String>) -> Result<()> {
        for cell in &mut row {
            if let Cow::Owned(escaped) = super::safe(cell) {
                *cell = escaped;
            }
        }
        if self.printer.is_none() {
            self.printer = Some(self.start()?);
        }
        match self.printer.as_mut().expect("started above") {
            Printer::Fitted { rows, .. } => rows.push(row),
            Printer::Direct { out, line } => write_line(out, line, &row, &self.widths)?,
        }
        Ok(())
    }

    /// Ends the table: prints a fitted table, flushes a direct one.
    pub fn finish(self) -> Result<()> {
        match self.printer {
            None => Ok(()),
            Some(Printer::Direct { mut out, .. }) => out.flush().map_err(Error::output),
            Some(Printer::Fitted {
                columns,
                column,
                rows,
            }) => {
                let mut table = Table::new();
                table
                    .load_style(presets::NOTHING)
                    .set_content_arrangement(ContentArrangement::Dynamic)
                    .set_width(columns as u16)
                    .set_header(self.header)
                    .add_rows(rows);
                for (index, each) in table.column_iter_mut().enumerate() {
                    each.set_padding((0, GAP as u16));
                    if index != column {
                        each.set_constraint(ColumnConstraint::ContentWidth);
                    }
                }
                let (mut out, _) = output(self.stream)?;
                writeln!(out, "{}", table.trim_fmt())
                    .and_then(|()| out.flush())
                    .map_err(Error::output)
            }
        }
    }

    /// Chooses how to print, once every row is measured, and prints the header if it is
    /// printed directly.
    fn start(&self) -> Result<Printer> {
        let (out, term) = output(self.stream)?;
        let terminal = term
            .size_checked()
            .map(|(_, columns)| usize::from(columns))
            .filter(|&columns| columns > 0);
        if let (Some(column), Some(columns)) = (self.wrap, terminal)
            && self.rows <= FITTED_ROWS
            && fits_by_wrapping(&self.widths, column, columns)
        {
            return Ok(Printer::Fitted {
                columns,
                column,
                rows: Vec::with_capacity(self.rows),
            });
        }
        // Written out directly, as comfy-table lays out this style: for 100,000 tokens its
        // per-cell allocations were measured at over a second and 250 MiB.
        let mut out = BufWriter::new(out);
        let mut line = String::new();
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        write_line(&mut out, &mut line, &header, &self.widths)?;
        Ok(Printer::Direct { out, line })
    }
}

/// How wide a cell prints: its terminal-safe form's width on a terminal.
pub fn cell_width(cell: &str) -> usize {
    // Printable ASCII is safe as it is and one column a byte: ids, dates, most names, and
    // the quick way for the million cells of a long list.
    if cell.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        cell.len()
    } else {
        super::safe(cell).width()
    }
}

/// How wide an already terminal-safe cell prints.
fn safe_width(cell: &str) -> usize {
    if cell.is_ascii() {
        cell.len()
    } else {
        cell.width()
    }
}

fn output(stream: Stream) -> Result<(Box<dyn Write>, console::Term)> {
    Ok(match stream {
        Stream::Stdout => (Box::new(super::stdout_file()?), console::Term::stdout()),
        Stream::Stderr => (Box::new(std::io::stderr().lock()), console::Term::stderr()),
    })
}

/// One line of cells in columns of `widths`, two spaces apart, without trailing blanks.
fn write_line(
    out: &mut impl Write,
    line: &mut String,
    row: &[String],
    widths: &[usize],
) -> Result<()> {
    const SPACES: &str = "                                                                ";
    line.clear();
    for (cell, width) in row.iter().zip(widths) {
        line.push_str(cell);
        let mut pad = width.saturating_sub(safe_width(cell)) + GAP;
        while pad > 0 {
            let some = pad.min(SPACES.len());
            line.push_str(&SPACES[..some]);
            pad -= some;
        }
    }
    out.write_all(line.trim_end().as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .map_err(Error::output)
}

/// Whether the table is wider than `columns`, and wrapping column `wrap` alone would fit it
/// while leaving that column readable.
fn fits_by_wrapping(widths: &[usize], wrap: usize, columns: usize) -> bool {
    let natural: usize = widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1);
    let narrowest = widths[wrap].min(WRAP_MIN);
    natural > columns && natural - widths[wrap] + narrowest <= columns
}
