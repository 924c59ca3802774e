//! Tables for people: columns two spaces apart, every cell made terminal-safe.

use std::borrow::Cow;
use std::io::{BufWriter, Write};

use comfy_table::{ColumnConstraint, ContentArrangement, Table, presets};
use unicode_width::UnicodeWidthStr;

use crate::error::{Error, Result};

/// Up to this many rows, a table is one comfy-table fitted to the terminal. Beyond, nobody reads
/// it whole on a screen: it is written as plain aligned columns, which for 100,000 tokens takes
/// a fraction of the time and memory (comfy-table keeps several allocations per cell and was
/// measured at over a second and 250 MiB).
const FITTED_ROWS: usize = 1000;

/// Columns apart by two spaces, flush left: plain to read, easy to cut.
const GAP: usize = 2;

/// Prints `rows` under `header` on stdout, every cell made terminal-safe. On a terminal the
/// table is fitted to its width by wrapping the `wrap` column (free text) only: ids and dates
/// stay whole, to be read and copied.
pub fn print(header: &[&str], rows: Vec<Vec<String>>, wrap: Option<usize>) -> Result<()> {
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
    let mut out = BufWriter::new(std::io::stdout().lock());
    if rows.len() <= FITTED_ROWS {
        let mut table = Table::new();
        table
            .load_style(presets::NOTHING)
            .set_header(header)
            .add_rows(rows);
        // A terminal that reports no width (0 columns) would squeeze every column to nothing.
        if table.width().is_some_and(|width| width > 0) {
            table.set_content_arrangement(ContentArrangement::Dynamic);
        }
        for (index, column) in table.column_iter_mut().enumerate() {
            column.set_padding((0, GAP as u16));
            if Some(index) != wrap {
                column.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
        writeln!(out, "{}", table.trim_fmt()).map_err(Error::output)?;
    } else {
        let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.width());
            }
        }
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
    out.flush().map_err(Error::output)
}
