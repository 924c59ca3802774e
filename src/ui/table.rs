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

/// [`print`] to either stream.
pub fn print_to(
    stream: Stream,
    header: &[&str],
    rows: Vec<Vec<String>>,
    wrap: Option<usize>,
) -> Result<()> {
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|cell| match super::safe(&cell) {
                    Cow::Borrowed(_) => cell,
                    Cow::Owned(escaped) => escaped,
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let (out, term): (Box<dyn Write>, _) = match stream {
        Stream::Stdout => (Box::new(std::io::stdout().lock()), console::Term::stdout()),
        Stream::Stderr => (Box::new(std::io::stderr().lock()), console::Term::stderr()),
    };
    let mut out = BufWriter::new(out);
    let terminal = term
        .size_checked()
        .map(|(_, columns)| usize::from(columns))
        .filter(|&columns| columns > 0);
    match (wrap, terminal) {
        (Some(column), Some(columns))
            if rows.len() <= FITTED_ROWS && fits_by_wrapping(&widths, column, columns) =>
        {
            let mut table = Table::new();
            table
                .load_style(presets::NOTHING)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(columns as u16)
                .set_header(header)
                .add_rows(rows);
            for (index, each) in table.column_iter_mut().enumerate() {
                each.set_padding((0, GAP as u16));
                if index != column {
                    each.set_constraint(ColumnConstraint::ContentWidth);
                }
            }
            writeln!(out, "{}", table.trim_fmt()).map_err(Error::output)?;
        }
        _ => {
            // Written out directly, as comfy-table lays out this style: for 100,000 tokens its
            // per-cell allocations were measured at over a second and 250 MiB.
            let mut line = String::new();
            let header = header.iter().map(|h| (*h).to_owned()).collect();
            for row in std::iter::once(header).chain(rows) {
                line.clear();
                for (cell, width) in row.iter().zip(&widths) {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', width - cell.width() + GAP));
                }
                writeln!(out, "{}", line.trim_end()).map_err(Error::output)?;
            }
        }
    }
    out.flush().map_err(Error::output)
}

/// Whether the table is wider than `columns`, and wrapping column `wrap` alone would fit it
/// while leaving that column readable.
fn fits_by_wrapping(widths: &[usize], wrap: usize, columns: usize) -> bool {
    let natural: usize = widths.iter().sum::<usize>() + GAP * widths.len().saturating_sub(1);
    let narrowest = widths[wrap].min(WRAP_MIN);
    natural > columns && natural - widths[wrap] + narrowest <= columns
}
