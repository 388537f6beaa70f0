//! CSV that is safe to open in a spreadsheet. Exports go to the owners' committee and the
//! accountant, who open them in Excel or WPS; a cell such as `=HYPERLINK("http://…","点此领取")`
//! (a refund reason any staff member typed) would run as a formula there. Every CSV the
//! product writes goes through [`SpreadsheetCsv`], which prefixes such a cell with `'` — the
//! OWASP "CSV injection" advice — so it shows as the text it is.

use serde::Serialize;

/// First characters that make a spreadsheet read a cell as a formula (or, for tab and
/// carriage return, shift it into one).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A plain decimal number such as `-12.50` is data, not a formula: a journal's signed amounts
/// must stay numbers for the accountant.
fn is_plain_number(cell: &str) -> bool {
    let digits = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && !fraction.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && fraction.chars().all(|c| c.is_ascii_digit())
}

/// The cell as written: prefixed with `'` if a spreadsheet would take it for a formula.
pub fn neutralised(cell: &str) -> std::borrow::Cow<'_, str> {
    // Invisible characters in front (a zero-width space, a byte order mark) do not stop a
    // spreadsheet from reading what follows as a formula.
    let visible = cell.trim_start_matches(|c: char| c == ' ' || crate::input::is_forbidden(c));
    let formula = |text: &str| text.starts_with(FORMULA_STARTS) && !is_plain_number(text);
    if formula(cell) || formula(visible) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// A CSV writer whose every cell is [`neutralised`].
pub struct SpreadsheetCsv {
    out: csv::Writer<Vec<u8>>,
    headers_written: bool,
}

impl Default for SpreadsheetCsv {
    fn default() -> Self {
        SpreadsheetCsv {
            out: csv::Writer::from_writer(Vec::new()),
            headers_written: false,
        }
    }
}

impl SpreadsheetCsv {
    pub fn write_record<I, T>(&mut self, record: I) -> Result<(), csv::Error>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let cells: Vec<String> = record
            .into_iter()
            .map(|c| neutralised(c.as_ref()).into_owned())
            .collect();
        self.out.write_record(&cells)
    }

    /// Writes `row` as `csv::Writer::serialize` would (a header row before the first), each
    /// cell neutralised.
    pub fn serialize<S: Serialize>(&mut self, row: &S) -> Result<(), csv::Error> {
        let mut one = csv::WriterBuilder::new()
            .has_headers(!self.headers_written)
            .from_writer(Vec::new());
        one.serialize(row)?;
        let bytes = one
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?;
        let mut records = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(bytes.as_slice());
        for record in records.records() {
            self.write_record(record?.iter())?;
        }
        self.headers_written = true;
        Ok(())
    }

    pub fn into_bytes(self) -> Result<Vec<u8>, csv::Error> {
        self.out
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_kept() {
        for (cell, written) in [
            (
                r#"=HYPERLINK("http://evil.example/x","点此领取")"#,
                r#"'=HYPERLINK("http://evil.example/x","点此领取")"#,
            ),
            ("+1+1", "'+1+1"),
            ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("-12.50", "-12.50"),
            ("+3", "+3"),
            ("12.5", "12.5"),
            ("-", "'-"),
            ("-.5", "'-.5"),
            ("退款 = 重复支付", "退款 = 重复支付"),
            ("", ""),
            ("\u{200b}=1+1", "'\u{200b}=1+1"),
            (" =1+1", "' =1+1"),
        ] {
            assert_eq!(neutralised(cell), written, "{cell:?}");
        }
    }

    #[derive(Serialize)]
    struct Line {
        memo: &'static str,
        amount: &'static str,
    }

    #[test]
    fn serialised_rows_get_one_header_and_neutralised_cells() {
        let mut csv = SpreadsheetCsv::default();
        for line in [
            Line {
                memo: "=1+1",
                amount: "-3.00",
            },
            Line {
                memo: "ok",
                amount: "3.00",
            },
        ] {
            csv.serialize(&line).unwrap_or_else(|e| panic!("{e}"));
        }
        let text = String::from_utf8(csv.into_bytes().unwrap_or_default()).unwrap_or_default();
        assert_eq!(text, "memo,amount\n'=1+1,-3.00\nok,3.00\n");
    }
}
