//! The public disclosure page (公示): plain HTML with inline SVG charts — no script, no
//! outside resources — readable on a phone and printable on A4 for the notice board.

use std::fmt::Write;

use rust_decimal::Decimal;

use super::data::{Disclosure, PeriodDisclosure};
use crate::store::disclosure::Count;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn number(text: &str) -> Decimal {
    text.parse::<Decimal>()
        .unwrap_or_default()
        .max(Decimal::ZERO)
}

/// `value / max` of `full` chart units, to a tenth.
fn scaled(full: i64, value: Decimal, max: Decimal) -> Decimal {
    (Decimal::from(full) * value / max).round_dp(1)
}

/// Owners' lines the page lists at most, so that a period prints on two A4 sheets: in three
/// columns, about 85 lines fit on the first sheet below the account and the charts and about
/// 185 on the second (measured, 8.5 pt); 200 leaves room for longer counts tables and a title
/// on two lines. Past this the page gives the count and the total and links the CSV
/// (`…/data.csv`), which always has every unit.
pub const OWNER_LINES_ON_PAGE_MAX: usize = 200;

/// Phone first; in print an A4 sheet: 12 mm margins, type in points, two columns for the
/// account beside the income and counts, owners in three newspaper columns. Only small blocks
/// are kept whole (a table of the account, a chart): a whole period kept whole would push it
/// past the title to the next sheet. Each further period starts a new sheet.
const STYLE: &str = "
body{font-family:'Noto Sans CJK SC','WenQuanYi Zen Hei','Microsoft YaHei',sans-serif;margin:0 auto;max-width:60rem;padding:1rem;color:#222;line-height:1.4}
h1{font-size:1.4rem;margin:.2rem 0;overflow-wrap:anywhere}h2{font-size:1.15rem;border-bottom:2px solid #2a6;padding-bottom:.2rem;margin:1.2rem 0 .4rem}h3{font-size:1rem;margin:.8rem 0 .3rem}
table{border-collapse:collapse;width:calc(100% - 1px);margin:.3rem 0}td,th{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}th{background:#f2f2f2;font-weight:600}
code{word-break:break-all;font-size:.8em}
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}tr.sum td{font-weight:700;background:#f2f8f4}.note{color:#555;font-size:.85rem;margin:.3rem 0}
svg{display:block;width:100%;height:auto}.bar{fill:#2a6}.axis{font-size:10px;fill:#444}.chart .axis{font-size:12px}.grid{stroke:#bbb;stroke-width:.5}
.cols,.counts{display:grid;gap:0 1rem}@media (min-width:44rem){.cols,.counts{grid-template-columns:1fr 1fr}}.cols>*,.counts>*{min-width:0}
ol.owners{list-style:none;margin:.3rem 0;padding:0;column-width:14rem;column-gap:1.5rem;column-rule:1px solid #ddd}
ol.owners li{display:flex;gap:.5rem;border-bottom:1px solid #eee;break-inside:avoid}ol.owners li span:first-child{flex:1;overflow-wrap:anywhere}ol.owners li.head{font-weight:600;color:#555}
@media print{@page{size:A4;margin:12mm}
body{max-width:none;padding:0;font-size:8.5pt;line-height:1.3}h1{font-size:13pt}h2{font-size:10.5pt;margin:2.5mm 0 1.5mm}h3{font-size:9pt;margin:2mm 0 1mm}
td,th{padding:.2mm 1.5mm}.note{font-size:7.5pt;margin:1mm 0}.cols,.counts{grid-template-columns:1fr 1fr;gap:0 5mm}
.chart svg{width:170mm;height:auto;margin:0 auto}ol.owners{columns:3;column-gap:5mm}
h2,h3{break-after:avoid}table,svg,.note{break-inside:avoid}section+section{break-before:page}a{color:inherit}}
";

/// Geometry of the chart of cars inside by hour, in SVG units: a bar per hour of the day.
const HOUR_SLOT: i64 = 19;
const HOUR_BAR: i64 = 15;
const HOUR_LEFT: i64 = 36;
const HOUR_TOP: i64 = 10;
const HOUR_PLOT: i64 = 120;

/// Average cars inside by local hour: one bar per hour (height 0 where nobody was inside), the
/// scale from 0 to the busiest hour, hours marked every three.
fn hour_chart(p: &PeriodDisclosure) -> String {
    let busiest = p
        .occupancy_by_hour
        .iter()
        .map(|h| h.average)
        .fold(Decimal::ZERO, Decimal::max);
    let scale = if busiest.is_zero() {
        Decimal::ONE
    } else {
        busiest
    };
    let base = HOUR_TOP + HOUR_PLOT;
    let right = HOUR_LEFT + 24 * HOUR_SLOT;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {} 150" role="img" aria-label="各时段平均在场车辆"><line class="grid" x1="{HOUR_LEFT}" y1="{HOUR_TOP}" x2="{right}" y2="{HOUR_TOP}"/><line class="grid" x1="{HOUR_LEFT}" y1="{base}" x2="{right}" y2="{base}"/><text class="axis" x="{}" y="{}" text-anchor="end">{busiest}</text><text class="axis" x="{}" y="{base}" text-anchor="end">0</text>"#,
        right + 12,
        HOUR_LEFT - 4,
        HOUR_TOP + 4,
        HOUR_LEFT - 4,
    );
    for h in &p.occupancy_by_hour {
        let height = scaled(HOUR_PLOT, h.average.max(Decimal::ZERO), scale);
        let x = HOUR_LEFT + HOUR_SLOT * i64::from(h.hour) + (HOUR_SLOT - HOUR_BAR) / 2;
        let _ = write!(
            svg,
            r#"<rect class="bar" data-hour="{}" x="{x}" y="{}" width="{HOUR_BAR}" height="{height}"><title>{:02}:00–{:02}:00 平均 {} 辆</title></rect>"#,
            h.hour,
            Decimal::from(base) - height,
            h.hour,
            h.hour + 1,
            h.average
        );
    }
    for hour in (0..=24).step_by(3) {
        let _ = write!(
            svg,
            r#"<text class="axis" x="{}" y="{}" text-anchor="middle">{hour:02}</text>"#,
            HOUR_LEFT + HOUR_SLOT * hour,
            base + 14,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The chart in words: the busiest hour, and how the figures are made.
fn hour_note(p: &PeriodDisclosure) -> String {
    let busiest = p
        .occupancy_by_hour
        .iter()
        .filter(|h| h.average > Decimal::ZERO)
        .max_by(|a, b| a.average.cmp(&b.average).then(b.hour.cmp(&a.hour)));
    let peak = match busiest {
        Some(h) => format!(
            "在场最多的时段：{:02}:00–{:02}:00，平均 {} 辆。",
            h.hour,
            h.hour + 1,
            h.average
        ),
        None => "本期没有车辆在场的记录。".to_owned(),
    };
    format!(
        "<p class=\"note\">{peak}按每次停车的实际入场、离场时间计算：本期每天该小时内各车在场时长之和 ÷ 该小时的总时长，例如一辆车在某小时内停留 30 分钟计 0.5 辆；期末仍在场的车辆计至期末。</p>"
    )
}

fn income_chart(p: &PeriodDisclosure) -> String {
    let items = [
        ("公共区域车位", &p.income.common_area_parking),
        ("临停车位池", &p.income.visitor_pool),
        ("其他", &p.income.other),
    ];
    let max = items
        .iter()
        .map(|(_, v)| number(v))
        .fold(Decimal::ONE, Decimal::max);
    // Narrow enough that its words print at the size of the text beside it in half a page.
    let mut svg = String::from(r#"<svg viewBox="0 0 320 84" role="img" aria-label="收入来源">"#);
    for (i, (name, value)) in items.iter().enumerate() {
        let y = 4 + 26 * i;
        let width = scaled(170, number(value), max);
        let _ = write!(
            svg,
            r#"<text class="axis" x="0" y="{}">{}</text><rect class="bar" x="76" y="{}" width="{}" height="18"></rect><text class="axis" x="{}" y="{}">¥{}</text>"#,
            y + 13,
            name,
            y,
            width,
            Decimal::from(80) + width,
            y + 13,
            escape(value)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn kind_name(key: &str) -> &str {
    match key {
        "visitor" => "临时停车",
        "owner" => "业主（无车位）",
        "permit" => "月卡/产权车位",
        "exempt" => "应急/免费车辆",
        other => other,
    }
}

fn space_kind_name(key: &str) -> &str {
    match key {
        "visitor" => "临停车位池",
        "reserved" => "月卡/产权车位",
        "exempt" => "应急通道",
        "owned" => "业主共享车位",
        "common" => "公共区域车位",
        "developer_unsold" => "开发商未售车位",
        other => other,
    }
}

fn period_section(out: &mut String, p: &PeriodDisclosure, tz: chrono_tz::Tz, csv_href: &str) {
    let local = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
    };
    let _ = write!(
        out,
        "<section><h2>{}（{} 至 {}）</h2><div class=\"cols\"><div>",
        escape(&p.label),
        local(p.starts_at),
        local(p.ends_at)
    );
    account(out, p);
    out.push_str("</div><div><h3>收入来源</h3>");
    out.push_str(&income_chart(p));
    out.push_str("<h3>停车次数</h3><div class=\"counts\">");
    count_table(out, "车辆类别", &p.sessions_by_kind, kind_name);
    count_table(out, "车位类别", &p.sessions_by_space_kind, space_kind_name);
    out.push_str(
        "</div></div></div><div class=\"chart\"><h3>车位使用情况：各时段平均在场车辆</h3>",
    );
    out.push_str(&hour_chart(p));
    out.push_str(&hour_note(p));
    out.push_str("</div>");
    owner_shares(out, p, csv_href);
    out.push_str("</section>");
}

/// An account an owner can add up line by line: the balance, plus income, less each
/// outgoing, is the closing balance.
fn account(out: &mut String, p: &PeriodDisclosure) {
    out.push_str("<h3>公共收益收支</h3><table>");
    for (label, value, sum) in [
        ("期初余额", &p.opening_balance, false),
        ("加：公共区域车位收入", &p.income.common_area_parking, false),
        ("加：临停车位池收入", &p.income.visitor_pool, false),
        ("加：其他收入", &p.income.other, false),
        ("（收入合计）", &p.income.total, false),
        ("减：退还车主", &p.refunds, false),
        ("减：物业管理成本分成", &p.management_cost, false),
        ("减：转入维修资金", &p.to_maintenance_fund, false),
        ("减：按专有面积分配给业主", &p.to_owners, false),
        ("期末余额", &p.closing_balance, true),
    ] {
        let _ = write!(
            out,
            "<tr{}><td>{label}</td><td class=\"n\">¥{}</td></tr>",
            if sum { " class=\"sum\"" } else { "" },
            escape(value)
        );
    }
    out.push_str("</table>");
    let _ = write!(
        out,
        "<p class=\"note\">期末余额 = 期初余额 + 收入合计 − 退还车主 − 物业管理成本分成 − 转入维修资金 − 分配给业主。其中往期补记（上期停车、本期到账或退款）：¥{}。业主共享车位平台服务费（非公共收益，公开备查）：¥{}。</p>",
        escape(&p.late_adjustments),
        escape(&p.income.shared_space_service_fees)
    );
}

/// The owners' share by unit, or, past [`OWNER_LINES_ON_PAGE_MAX`] units, the count, the
/// total and where every unit's line is.
fn owner_shares(out: &mut String, p: &PeriodDisclosure, csv_href: &str) {
    let units = p.owner_shares.len();
    if units == 0 {
        return;
    }
    let _ = write!(
        out,
        "<h3>按专有面积分配给业主：{units} 户，合计 ¥{}</h3>",
        escape(&p.to_owners)
    );
    if units > OWNER_LINES_ON_PAGE_MAX {
        let _ = write!(
            out,
            "<p class=\"note owners-elsewhere\">户数较多（超过 {OWNER_LINES_ON_PAGE_MAX} 户），本页不逐户列出；各户房号、专有面积及分得金额见<a href=\"{}\">明细表（CSV，可用电子表格打开）</a>，即在本公示网址后加 /data.csv。</p>",
            escape(csv_href)
        );
        return;
    }
    out.push_str("<ol class=\"owners\"><li class=\"head\"><span>房号</span><span class=\"n\">专有面积 m²</span><span class=\"n\">分得</span></li>");
    for o in &p.owner_shares {
        let _ = write!(
            out,
            "<li><span>{}</span><span class=\"n\">{}</span><span class=\"n\">¥{}</span></li>",
            escape(&o.unit),
            escape(&o.floor_area_m2),
            escape(&o.credited)
        );
    }
    out.push_str("</ol>");
}

/// A two-column table of stays counted by a key, the key shown by its name.
fn count_table(out: &mut String, heading: &str, counts: &[Count], name: fn(&str) -> &str) {
    let _ = write!(out, "<table><tr><th>{heading}</th><th>次数</th></tr>");
    for c in counts {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(name(&c.key)),
            c.count
        );
    }
    out.push_str("</table>");
}

/// The compound's lotteries: each commitment is on the page from its announcement, before
/// anyone can apply, and the full record (seed, applicants, order) links from it.
fn lotteries(out: &mut String, d: &Disclosure, tz: chrono_tz::Tz) {
    if d.lotteries.is_empty() {
        return;
    }
    let at = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M");
    out.push_str("<section class=\"lotteries\"><h2>车位摇号</h2><table><tr><th>名称</th><th>车位</th><th>报名时间</th><th>报名户数</th><th>种子承诺值（SHA-256）</th><th>摇号</th></tr>");
    for l in &d.lotteries {
        let _ = write!(
            out,
            "<tr><td><a href=\"../lotteries/{id}\">{title}</a></td><td>{places}</td><td>{from} 至 {to}</td><td>{applicants}</td><td><code>{commitment}</code></td><td>{drawn}</td></tr>",
            id = l.id,
            title = escape(&l.title),
            places = l.places,
            from = at(l.applications_open_at),
            to = at(l.applications_close_at),
            applicants = l.applicants,
            commitment = escape(&l.commitment),
            drawn = l.drawn_at.map_or_else(|| "未摇号".to_owned(), |t| at(t).to_string()),
        );
    }
    out.push_str("</table><p class=\"note\">摇号前公布种子的承诺值；摇号后公布种子、报名名单与结果，任何人可按公开算法复核（parkshare-lottery-v1）。</p></section>");
}

/// The whole page; `csv_href` is where its CSV is, relative to the page.
pub fn render(d: &Disclosure, csv_href: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta name=\"robots\" content=\"noindex\"><title>{name} 公共收益公示</title><style>{STYLE}</style></head><body><h1>{name} 公共收益及车位使用情况公示</h1><p class=\"note\">公共收益归全体业主共有，单独建账，主要用于补充维修资金。时间均为当地时间（{}）。生成时间：{}</p>",
        escape(&d.time_zone),
        d.generated_at.with_timezone(&d.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai)).format("%Y-%m-%d %H:%M"),
        name = escape(&d.compound),
    );
    if d.periods.is_empty() {
        out.push_str("<p>尚无已结账的会计期间。</p>");
    }
    let tz: chrono_tz::Tz = d.time_zone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    for p in &d.periods {
        period_section(&mut out, p, tz, csv_href);
    }
    lotteries(&mut out, d, tz);
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn text_cannot_break_out_of_the_page() {
        assert_eq!(
            escape("<script>\"a\"&'b'</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
    }
}
