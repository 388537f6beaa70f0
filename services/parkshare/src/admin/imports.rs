//! CSV imports of what property firms keep in spreadsheets: owners, spaces, vehicles.
//!
//! An import is all or nothing: every row is validated (and written inside one transaction);
//! if any row fails, the transaction is rolled back and the answer lists every failing row
//! with its line number, field and reason. Rows are upserted by their natural key (unit,
//! lot + space code, plate), so importing the same sheet twice changes nothing.
//!
//! Columns (header row required, order free, UTF-8 with or without BOM):
//! - owners:   `unit,name,floor_area_m2,phone` (phone may be empty)
//! - spaces:   `lot,code,kind,owner_unit` (owner_unit only for kind `owned`)
//! - vehicles: `plate,class,owner_unit`

use crate::error::ErrorBody;
use crate::error::ErrorCode;
use std::collections::HashMap;

use actix_web::{post, web, HttpResponse};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::compounds::owned_compound;
use super::validate::{self, FieldError};
use crate::auth::Staff;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::registry::{self, NewOwner};

/// Most rows per import: a compound has at most a few thousand owners or spaces.
const IMPORT_ROWS_MAX: usize = 20_000;
/// Longest cell: the longest column (a name) takes 200 characters; a longer cell is a sheet
/// pasted into the wrong place.
const CELL_CHARS_MAX: usize = 1_000;

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(import);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sheet {
    Owners,
    Spaces,
    Vehicles,
}

impl Sheet {
    fn parse(text: &str) -> Option<Sheet> {
        match text {
            "owners" => Some(Sheet::Owners),
            "spaces" => Some(Sheet::Spaces),
            "vehicles" => Some(Sheet::Vehicles),
            _ => None,
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            Sheet::Owners => &["unit", "name", "floor_area_m2", "phone"],
            Sheet::Spaces => &["lot", "code", "kind", "owner_unit"],
            Sheet::Vehicles => &["plate", "class", "owner_unit"],
        }
    }
}

#[derive(Debug, Serialize)]
struct RowError {
    line: u64,
    field: &'static str,
    message: String,
}

/// A sheet imported whole: how many rows made something new, how many updated.
#[derive(Serialize, utoipa::ToSchema)]
struct Imported {
    created: usize,
    updated: usize,
}

/// A row with its columns looked up by name.
struct Row<'a> {
    record: &'a csv::StringRecord,
    index: &'a HashMap<&'static str, usize>,
}

impl Row<'_> {
    fn get(&self, column: &'static str) -> &str {
        self.index
            .get(column)
            .and_then(|i| self.record.get(*i))
            .unwrap_or("")
            .trim()
    }
}

/// Import owners, spaces or vehicles from CSV, all or nothing.
#[utoipa::path(
    tag = "staff",
    operation_id = "import_sheet",
    security(("staff_token" = [])),
    params(
        ("id" = Uuid, Path, description = "The compound"),
        ("sheet" = String, Path, description = "What the sheet holds: `owners`, `spaces` or `vehicles`", pattern = "^(owners|spaces|vehicles)$"),
    ),
    request_body(
        content = String,
        content_type = "text/csv",
        description = "The sheet as CSV (UTF-8, or GBK as Excel saves it), a header row naming the columns; at most 20,000 rows",
        example = "name,floor_area_m2\n张三,89.5\n",
    ),
    responses(
        (status = 200, description = "Every row imported: how many", body = Imported),
        (status = 422, description = "Nothing imported: `import_rejected` with every refused row and why, or the sheet's own fault (`invalid_csv`, `missing_columns`, `too_many_rows`)", body = ErrorBody),
    )
)]
#[post("/compounds/{id}/imports/{sheet}")]
async fn import(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<(Uuid, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (id, sheet) = path.into_inner();
    let sheet = Sheet::parse(&sheet).ok_or(ApiError::NotFound("import sheet"))?;
    let compound = owned_compound(&state, &staff, id).await?;
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(&body);
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(body);
    let headers = reader
        .headers()
        .map_err(|e| {
            ApiError::invalid(
                ErrorCode::InvalidCsv,
                format!("cannot read the header row: {e}"),
            )
        })?
        .clone();
    let mut index = HashMap::new();
    for column in sheet.columns() {
        match headers.iter().position(|h| h.trim() == *column) {
            Some(i) => {
                index.insert(*column, i);
            }
            None => {
                return Err(ApiError::invalid(
                    ErrorCode::MissingColumns,
                    format!(
                        "the header row must name the columns {}",
                        sheet.columns().join(",")
                    ),
                ))
            }
        }
    }

    let mut tx = state.db.begin().await?;
    let mut errors = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut done = Imported {
        created: 0,
        updated: 0,
    };
    for (n, record) in reader.records().enumerate() {
        if n >= IMPORT_ROWS_MAX {
            return Err(ApiError::invalid(
                ErrorCode::TooManyRows,
                format!("at most {IMPORT_ROWS_MAX} rows per import"),
            ));
        }
        let line = n as u64 + 2;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(RowError {
                    line,
                    field: "row",
                    message: e.to_string(),
                });
                continue;
            }
        };
        if let Some((column, e)) = sheet.columns().iter().find_map(|column| {
            let cell = index.get(column).and_then(|i| record.get(*i)).unwrap_or("");
            crate::input::check_text(cell, CELL_CHARS_MAX)
                .err()
                .map(|e| (*column, e))
        }) {
            errors.push(RowError {
                line,
                field: column,
                message: e.to_string(),
            });
            continue;
        }
        let row = Row {
            record: &record,
            index: &index,
        };
        let outcome = match sheet {
            Sheet::Owners => owner_row(&mut tx, &staff, compound.id, &row).await?,
            Sheet::Spaces => space_row(&mut tx, &staff, compound.id, &row).await?,
            Sheet::Vehicles => vehicle_row(&mut tx, &staff, compound.id, &row).await?,
        };
        match outcome {
            Ok((key, created)) => {
                if let Some(first) = seen.insert(key, line) {
                    errors.push(RowError {
                        line,
                        field: "row",
                        message: format!("repeats line {first}"),
                    });
                } else if created {
                    done.created += 1;
                } else {
                    done.updated += 1;
                }
            }
            Err(e) => errors.push(RowError {
                line,
                field: e.field,
                message: e.message,
            }),
        }
    }
    if !errors.is_empty() {
        tx.rollback().await?;
        return Ok(HttpResponse::UnprocessableEntity().json(serde_json::json!({
            "error": {
                "code": ErrorCode::ImportRejected,
                "message": format!("{} row(s) are invalid; nothing was imported", errors.len()),
                "rows": errors,
            }
        })));
    }
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(done))
}

type RowOutcome = Result<(String, bool), FieldError>;

fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

async fn owner_row(
    tx: &mut PgConnection,
    staff: &Staff,
    compound_id: Uuid,
    row: &Row<'_>,
) -> Result<RowOutcome, ApiError> {
    let parsed = (|| {
        let unit = validate::unit("unit", row.get("unit"))?;
        let name = validate::text("name", row.get("name"), 200)?;
        let area: Decimal = row
            .get("floor_area_m2")
            .parse()
            .map_err(|_| field("floor_area_m2", "must be a number such as 89.50"))?;
        let area = validate::floor_area("floor_area_m2", area)?;
        let phone = Some(row.get("phone"))
            .filter(|p| !p.is_empty())
            .map(|p| validate::text("phone", p, 40))
            .transpose()?;
        Ok::<_, FieldError>((unit, name, area, phone))
    })();
    let (unit, name, floor_area_m2, phone) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Err(e)),
    };
    let owner = NewOwner {
        unit: &unit,
        name: &name,
        floor_area_m2,
        phone: phone.as_deref(),
    };
    let created = registry::upsert_owner(&mut *tx, staff.tenant_id, compound_id, &owner).await?;
    Ok(Ok((unit, created)))
}

async fn owner_by_unit(
    tx: &mut PgConnection,
    staff: &Staff,
    compound_id: Uuid,
    unit: &str,
) -> Result<Result<Uuid, FieldError>, ApiError> {
    let id = registry::owner_id_by_unit(&mut *tx, staff.tenant_id, compound_id, unit).await?;
    Ok(id.ok_or_else(|| {
        field(
            "owner_unit",
            format!("no owner of unit {unit}; import owners first"),
        )
    }))
}

async fn space_row(
    tx: &mut PgConnection,
    staff: &Staff,
    compound_id: Uuid,
    row: &Row<'_>,
) -> Result<RowOutcome, ApiError> {
    let parsed = (|| {
        let lot = validate::text("lot", row.get("lot"), 200)?;
        let code = validate::text("code", row.get("code"), 50)?;
        let kind = validate::space_kind("kind", row.get("kind"))?;
        let unit = match row.get("owner_unit").trim() {
            "" => String::new(),
            given => validate::unit("owner_unit", given)?,
        };
        match (kind, unit.is_empty()) {
            ("owned", true) => Err(field("owner_unit", "an owned space needs its owner's unit")),
            ("owned", false) | (_, true) => Ok((lot, code, kind, unit)),
            (_, false) => Err(field("owner_unit", "only an owned space has an owner")),
        }
    })();
    let (lot, code, kind, unit) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Err(e)),
    };
    let Some(lot_id) =
        registry::lot_id_by_name(&mut *tx, staff.tenant_id, compound_id, &lot).await?
    else {
        return Ok(Err(field(
            "lot",
            format!("no lot named {lot} in this compound"),
        )));
    };
    let owner_id = match unit.is_empty() {
        true => None,
        false => match owner_by_unit(tx, staff, compound_id, &unit).await? {
            Ok(id) => Some(id),
            Err(e) => return Ok(Err(e)),
        },
    };
    let created =
        registry::upsert_space(&mut *tx, staff.tenant_id, lot_id, &code, kind, owner_id).await?;
    Ok(Ok((format!("{lot}/{code}"), created)))
}

async fn vehicle_row(
    tx: &mut PgConnection,
    staff: &Staff,
    compound_id: Uuid,
    row: &Row<'_>,
) -> Result<RowOutcome, ApiError> {
    let parsed = (|| {
        let plate = validate::plate("plate", row.get("plate"))?;
        let class = validate::vehicle_class("class", row.get("class"))?;
        let unit = validate::unit("owner_unit", row.get("owner_unit"))?;
        Ok::<_, FieldError>((plate, class, unit))
    })();
    let (plate, class, unit) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => return Ok(Err(e)),
    };
    let owner_id = match owner_by_unit(tx, staff, compound_id, &unit).await? {
        Ok(id) => id,
        Err(e) => return Ok(Err(e)),
    };
    let created = registry::upsert_vehicle(
        &mut *tx,
        staff.tenant_id,
        compound_id,
        plate.as_str(),
        class.as_str(),
        owner_id,
    )
    .await?;
    Ok(Ok((plate.to_string(), created)))
}
