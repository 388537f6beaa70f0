//! CSV imports: all or nothing, with a per-row report.

use crate::helpers::{spawn_app, TestApp};

async fn import(app: &TestApp, compound: &str, sheet: &str, csv: &str) -> (u16, serde_json::Value) {
    let response = app
        .client
        .post(format!(
            "{}/v1/admin/compounds/{compound}/imports/{sheet}",
            app.address
        ))
        .bearer_auth(&app.staff_token)
        .header("content-type", "text/csv")
        .body(csv.to_owned())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn owners_spaces_and_vehicles_import_and_reimport_idempotently() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let c = &site.compound;
    let owners = "\u{feff}unit,name,floor_area_m2,phone\n1-1-101,张伟,89.50,13800000000\n1-1-102,李娜,120.3,\n";
    let (status, body) = import(&app, c, "owners", owners).await;
    assert_eq!((status, body["created"].as_u64()), (200, Some(2)), "{body}");
    let (status, body) = import(&app, c, "owners", owners).await;
    assert_eq!(
        (status, body["created"].as_u64(), body["updated"].as_u64()),
        (200, Some(0), Some(2))
    );

    let spaces = "lot,code,kind,owner_unit\n地库,A-001,owned,1-1-101\n地库,C-001,common,\n";
    let (status, body) = import(&app, c, "spaces", spaces).await;
    assert_eq!((status, body["created"].as_u64()), (200, Some(2)), "{body}");
    let vehicles = "plate,class,owner_unit\n云A12345,small,1-1-101\n云AD12345,new_energy,1-1-102\n";
    let (status, body) = import(&app, c, "vehicles", vehicles).await;
    assert_eq!((status, body["created"].as_u64()), (200, Some(2)), "{body}");
    assert_eq!(app.count("select count(*) from vehicles").await, 2);
}

#[tokio::test]
async fn a_sheet_with_bad_rows_imports_nothing_and_names_every_bad_line() {
    let app = spawn_app().await;
    let site = app.site(10).await;
    let c = &site.compound;
    let owners = "unit,name,floor_area_m2,phone\n\
                  1-1-101,张伟,89.50,\n\
                  1-1-102,李娜,-5,\n\
                  1-1-103,,70,\n\
                  1-1-101,王芳,60,\n\
                  1-1-104,赵磊,75.125,\n";
    let (status, body) = import(&app, c, "owners", owners).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("import_rejected")),
        "{body}"
    );
    let lines: Vec<(u64, &str)> = body["error"]["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    (
                        r["line"].as_u64().unwrap_or(0),
                        r["field"].as_str().unwrap_or(""),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        lines,
        vec![
            (3, "floor_area_m2"),
            (4, "name"),
            (5, "row"),
            (6, "floor_area_m2")
        ]
    );
    assert_eq!(
        app.count("select count(*) from owners").await,
        0,
        "nothing half-imported"
    );

    let (status, body) = import(&app, c, "vehicles", "plate,class\n云A12345,small\n").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("missing_columns"))
    );
    let (status, body) = import(
        &app,
        c,
        "vehicles",
        "plate,class,owner_unit\n云A12345,small,9-9-999\n",
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["rows"][0]["field"], "owner_unit");
}
