//! Tables for people. Every cell goes through [`super::safe`].

use comfy_table::{ContentArrangement, Table, presets};

pub fn new<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    // Columns apart by two spaces, flush left: plain to read, easy to cut.
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
}

/// Adds a row of user-supplied text, made terminal-safe.
pub fn add_row<I, S>(table: &mut Table, cells: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    table.add_row(
        cells
            .into_iter()
            .map(|cell| super::safe(cell.as_ref()).into_owned()),
    );
}
