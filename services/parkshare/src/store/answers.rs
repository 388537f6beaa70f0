//! A gate read's answer, as the device gets it and `gate_events.response` keeps it.
//!
//! The answer stays this type from the decision to the edge: the HTTP handler, the camera
//! adapters' replies and the Postgres write serialise it; a stored answer replayed to a
//! retried read is decoded back into it. Field names and wire strings are those of every
//! answer stored so far, so old rows decode too; fields added after the first answers were
//! stored default when absent.

use parkshare_domain::decision::{Action, Direction, Reason};
use parkshare_domain::money::Money;
use parkshare_tariff::Bill;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateDecision {
    pub event_id: Uuid,
    pub gate_id: Uuid,
    /// `entry` or `exit`.
    #[schema(value_type = String)]
    pub direction: Direction,
    /// The plate as read. Kept as text: an answer stored under earlier plate rules must still
    /// replay.
    pub plate: String,
    /// `open` or `refuse`.
    #[schema(value_type = String)]
    pub action: Action,
    /// Stable reason code, e.g. `visitor_admitted`, `lot_full`, `payment_required`.
    #[schema(value_type = String)]
    pub reason: Reason,
    /// Text for the lane's LED display.
    #[serde(default)]
    pub display: String,
    #[serde(default)]
    pub session_id: Option<Uuid>,
    /// Amount still owed, in yuan, as a decimal string.
    #[schema(value_type = String, example = "6.00")]
    pub amount_due: Money,
    /// Itemised bill at exit.
    #[schema(value_type = Option<Object>)]
    #[serde(default)]
    pub bill: Option<Bill>,
    /// Filing number (备案号) of the tariff the bill was computed by.
    #[serde(default)]
    pub filing_no: Option<String>,
    /// True when this answer replays an earlier one (a retried or duplicate read).
    #[serde(default)]
    pub duplicate: bool,
}

impl GateDecision {
    /// The barrier opens on this answer.
    pub fn opens(&self) -> bool {
        self.action == Action::Open
    }

    /// This answer given again to a retried or duplicate read.
    pub fn replayed(self) -> GateDecision {
        GateDecision {
            duplicate: true,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An exit answer as `gate_events.response` holds it today.
    fn stored_exit() -> serde_json::Value {
        json!({
            "event_id": "0193a1b2-0000-7000-8000-000000000001",
            "gate_id": "0193a1b2-0000-7000-8000-000000000002",
            "direction": "exit",
            "plate": "京A12345",
            "action": "refuse",
            "reason": "payment_required",
            "display": "请缴费6.00元",
            "session_id": "0193a1b2-0000-7000-8000-000000000003",
            "amount_due": "6.00",
            "bill": {
                "duration_s": 7200,
                "lines": [{
                    "code": "block",
                    "description": "首2小时",
                    "from": "2026-01-01T08:00:00Z",
                    "to": "2026-01-01T10:00:00Z",
                    "amount": "6.00"
                }],
                "total": "6.00"
            },
            "filing_no": "京发改备2026-001",
            "duplicate": false
        })
    }

    #[test]
    fn a_stored_answer_decodes_and_encodes_to_the_same_json() -> Result<(), serde_json::Error> {
        let answer: GateDecision = serde_json::from_value(stored_exit())?;
        assert_eq!(
            (answer.direction, answer.action, answer.reason),
            (Direction::Exit, Action::Refuse, Reason::PaymentRequired)
        );
        assert_eq!(answer.amount_due, Money::from_fen(600));
        assert_eq!(
            answer.bill.as_ref().map(|b| b.total),
            Some(answer.amount_due)
        );
        assert_eq!(serde_json::to_value(&answer)?, stored_exit());
        Ok(())
    }

    #[test]
    fn a_replayed_answer_says_so_and_nothing_else_changes() -> Result<(), serde_json::Error> {
        let answer: GateDecision = serde_json::from_value(stored_exit())?;
        let mut expected = stored_exit();
        expected["duplicate"] = json!(true);
        assert_eq!(serde_json::to_value(answer.replayed())?, expected);
        Ok(())
    }

    #[test]
    fn an_answer_stored_by_the_first_versions_still_decodes() -> Result<(), serde_json::Error> {
        // Before tariff filings: no `filing_no`; a zero amount written with scale 0.
        let old = json!({
            "event_id": "0193a1b2-0000-7000-8000-000000000001",
            "gate_id": "0193a1b2-0000-7000-8000-000000000002",
            "direction": "entry",
            "plate": "京A12345",
            "action": "open",
            "reason": "visitor_admitted",
            "display": "欢迎光临",
            "session_id": null,
            "amount_due": "0",
            "bill": null,
            "duplicate": false
        });
        let answer: GateDecision = serde_json::from_value(old)?;
        assert!(answer.opens());
        assert_eq!(answer.filing_no, None);
        assert_eq!(serde_json::to_value(&answer)?["amount_due"], json!("0.00"));
        Ok(())
    }

    #[test]
    fn a_recorded_passage_keeps_its_wire_words() -> Result<(), serde_json::Error> {
        let recorded = json!({
            "event_id": "0193a1b2-0000-7000-8000-000000000001",
            "gate_id": "0193a1b2-0000-7000-8000-000000000002",
            "direction": "entry",
            "plate": "京A12345",
            "action": "none",
            "reason": "offline_recorded",
            "display": "",
            "session_id": null,
            "amount_due": "0.00",
            "bill": null,
            "filing_no": null,
            "duplicate": false
        });
        let answer: GateDecision = serde_json::from_value(recorded.clone())?;
        assert_eq!(
            (answer.action, answer.reason),
            (Action::Recorded, Reason::OfflineRecorded)
        );
        assert_eq!(serde_json::to_value(&answer)?, recorded);
        Ok(())
    }
}
