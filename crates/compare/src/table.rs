//! A plain-text table whose columns stay aligned whatever the values: each
//! column is as wide as its widest cell, header included. The summary
//! table of `compare run` is one.

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// Rows of cells under a header, rendered with one space between columns.
#[derive(Debug, Clone)]
pub struct Table {
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
    /// Rows that are a first cell and free text after it (`(row index,
    /// text)`): the text spans the other columns and does not widen them.
    spans: Vec<(usize, String)>,
}

impl Table {
    /// A table with these column headers and alignments.
    pub fn new(header: &[(&str, Align)]) -> Table {
        Table {
            align: header.iter().map(|h| h.1).collect(),
            rows: vec![header.iter().map(|h| h.0.to_string()).collect()],
            spans: Vec::new(),
        }
    }

    /// Adds a row of `first` in the first column and `text` across the
    /// others (e.g. a backend whose every run failed).
    pub fn row_with_text(&mut self, first: String, text: String) {
        self.spans.push((self.rows.len(), text));
        self.rows.push(vec![first]);
    }

    /// Adds a row. A row may have fewer cells than the header (the rest
    /// stay empty); extra cells are kept and left-aligned.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as lines of text, trailing spaces trimmed.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut width = vec![0; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for (n, r) in self.rows.iter().enumerate() {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                let pad = " ".repeat(width[i] - c.chars().count());
                match self.align.get(i).copied().unwrap_or(Align::Left) {
                    Align::Left => {
                        line.push_str(c);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(c);
                    }
                }
            }
            if let Some((_, text)) = self.spans.iter().find(|(i, _)| *i == n) {
                line.push(' ');
                line.push_str(text);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}
