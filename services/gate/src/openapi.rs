//! The OpenAPI document of the gate API, served at `/openapi.json`, and its page for people
//! at `/docs`.

use actix_web::{get, web, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::gate::events;

#[derive(OpenApi)]
#[openapi(
    info(title = "parkshare gate API", description = "Barrier-gate entry and exit decisions."),
    paths(events::post_event),
    components(schemas(events::GateEventRequest, events::GateDecision)),
    modifiers(&DeviceToken, &Catalogue)
)]
pub struct GateApi;

/// One route of the service, for the catalogue.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// Who calls it: gate, staff, owner, visitor, public, committee, supervisor, operator,
    /// provider, operations.
    pub audience: &'static str,
    /// The security scheme of its credential; empty when none is needed.
    pub credential: &'static str,
    pub summary: &'static str,
}

/// Every route: method, path, audience, credential, summary. The gate's event route is
/// described in full by its annotations; the others are listed from this table.
pub const ROUTES: &[Route] = &[
    Route { method: "get", path: "/v1/committee/disclosure", audience: "committee", credential: "committee_token", summary: "The compound's disclosure, as on its public page" },
    Route { method: "get", path: "/v1/committee/periods", audience: "committee", credential: "committee_token", summary: "The compound's closed periods" },
    Route { method: "get", path: "/v1/committee/periods/{id}/journal.beancount", audience: "committee", credential: "committee_token", summary: "A closed period's journal in beancount syntax" },
    Route { method: "get", path: "/v1/committee/periods/{id}/journal.csv", audience: "committee", credential: "committee_token", summary: "A closed period's postings as CSV" },
    Route { method: "get", path: "/v1/committee/periods/{id}/statements", audience: "committee", credential: "committee_token", summary: "Every owner's statement for a closed period" },
    Route { method: "post", path: "/v1/gate/events", audience: "gate", credential: "device_token", summary: "Post an entry or exit plate read and get the barrier decision" },
    Route { method: "get", path: "/docs", audience: "operations", credential: "", summary: "The API page for people: every operation of the OpenAPI document with its description," },
    Route { method: "get", path: "/healthz", audience: "operations", credential: "", summary: "The process is alive." },
    Route { method: "get", path: "/openapi.json", audience: "operations", credential: "", summary: "This document" },
    Route { method: "get", path: "/readyz", audience: "operations", credential: "", summary: "Postgres and Redis are reachable and the schema is this build's." },
    Route { method: "post", path: "/v1/operator/supervisors", audience: "operator", credential: "operator_token", summary: "The operator creates a supervisor (e.g. a street office) and its token (shown once)." },
    Route { method: "post", path: "/v1/operator/supervisors/{id}/compounds/{compound}", audience: "operator", credential: "operator_token", summary: "The operator puts a compound in a supervisor's area." },
    Route { method: "post", path: "/v1/operator/tenants", audience: "operator", credential: "operator_token", summary: "Creates a tenant and returns its first staff token, shown this once only." },
    Route { method: "get", path: "/v1/owner/bookings", audience: "owner", credential: "owner_token", summary: "Bookings on the owner's spaces, newest first, each with its history (who parked when) and" },
    Route { method: "get", path: "/v1/owner/earnings", audience: "owner", credential: "owner_token", summary: "What the owner is owed and earned per month, from the settlement ledger." },
    Route { method: "get", path: "/v1/owner/spaces", audience: "owner", credential: "owner_token", summary: "The owner's spaces and how each is shared." },
    Route { method: "get", path: "/v1/owner/spaces/{id}/exceptions", audience: "owner", credential: "owner_token", summary: "The space's one-off openings and blackouts still to come" },
    Route { method: "post", path: "/v1/owner/spaces/{id}/exceptions", audience: "owner", credential: "owner_token", summary: "Add a one-off opening or blackout." },
    Route { method: "delete", path: "/v1/owner/spaces/{id}/exceptions/{exception}", audience: "owner", credential: "owner_token", summary: "Remove a one-off opening or blackout (refused if it would strand a booking)." },
    Route { method: "get", path: "/v1/owner/spaces/{id}/open-hours", audience: "owner", credential: "owner_token", summary: "The hours the space is open to visitors within `[from, to)`, as visitors will see them." },
    Route { method: "post", path: "/v1/owner/spaces/{id}/pause", audience: "owner", credential: "owner_token", summary: "Stop new bookings at once (existing ones stand)." },
    Route { method: "put", path: "/v1/owner/spaces/{id}/price", audience: "owner", credential: "owner_token", summary: "Set the space's price as a percentage of the filed tariff: within it by construction (rule" },
    Route { method: "post", path: "/v1/owner/spaces/{id}/resume", audience: "owner", credential: "owner_token", summary: "Take bookings again" },
    Route { method: "put", path: "/v1/owner/spaces/{id}/windows", audience: "owner", credential: "owner_token", summary: "Replace the space's weekly windows." },
    Route { method: "post", path: "/v1/admin/compounds/{id}/lotteries", audience: "staff", credential: "staff_token", summary: "Announce a lottery (摇号): its seed is drawn and only its commitment shown" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/lotteries", audience: "staff", credential: "staff_token", summary: "The compound's lotteries, newest first" },
    Route { method: "get", path: "/v1/admin/lotteries/{id}", audience: "staff", credential: "staff_token", summary: "A lottery with its applicants (owner ids too) and offers" },
    Route { method: "post", path: "/v1/admin/lotteries/{id}/draw", audience: "staff", credential: "staff_token", summary: "Draw a lottery whose applications have closed; drawing again answers the same draw" },
    Route { method: "get", path: "/v1/owner/lotteries", audience: "owner", credential: "owner_token", summary: "The lotteries of the owner's compound, with the owner's application, place and offer" },
    Route { method: "post", path: "/v1/owner/lotteries/{id}/applications", audience: "owner", credential: "owner_token", summary: "Apply to a lottery, once per household, while its window is open" },
    Route { method: "post", path: "/v1/owner/lotteries/{id}/offer/accept", audience: "owner", credential: "owner_token", summary: "Accept the household's open offer; with a plate, rent a won space at once" },
    Route { method: "post", path: "/v1/owner/lotteries/{id}/offer/decline", audience: "owner", credential: "owner_token", summary: "Decline the household's open offer; it passes to the next applicant" },
    Route { method: "get", path: "/v1/public/lotteries/{id}", audience: "public", credential: "", summary: "A lottery as published: commitment, applicants, and once drawn the seed, order and offers" },
    Route { method: "post", path: "/v1/public/lotteries/verify", audience: "public", credential: "", summary: "Draw a published lottery again and say whether its commitment and order match" },
    Route { method: "put", path: "/v1/admin/spaces/{id}/unsold-offer", audience: "staff", credential: "staff_token", summary: "Record how a developer-unsold space is offered, and since when it is for sale" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/unsold-spaces", audience: "staff", credential: "staff_token", summary: "Developer-unsold spaces against the two-year rule, and how many break it" },
    Route { method: "post", path: "/v1/owner/rentals", audience: "owner", credential: "owner_token", summary: "Apply for a rental (月租) of a lot's pool or a space for whole months: the held term and its payment intent" },
    Route { method: "get", path: "/v1/owner/rentals", audience: "owner", credential: "owner_token", summary: "The owner's rental terms, newest first, with where each stands" },
    Route { method: "post", path: "/v1/owner/rentals/{id}/renewal", audience: "owner", credential: "owner_token", summary: "Renew a paid term for the next whole months, before it lapses" },
    Route { method: "get", path: "/v1/owner/waiting-list", audience: "owner", credential: "owner_token", summary: "The owner's places on the compound's waiting list" },
    Route { method: "post", path: "/v1/owner/waiting-list", audience: "owner", credential: "owner_token", summary: "Join the compound's waiting list for a kind of space" },
    Route { method: "delete", path: "/v1/owner/waiting-list/{id}", audience: "owner", credential: "owner_token", summary: "Leave the waiting list" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/rentals", audience: "staff", credential: "staff_token", summary: "Enter a rental for an owner or a non-owner renter: the held term and its payment intent" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/rentals", audience: "staff", credential: "staff_token", summary: "The compound's rental terms; with expiring_within_days, the terms to chase for renewal" },
    Route { method: "get", path: "/v1/admin/rentals/{id}", audience: "staff", credential: "staff_token", summary: "One rental term and where it stands" },
    Route { method: "post", path: "/v1/admin/rentals/{id}/payments", audience: "staff", credential: "staff_token", summary: "Cash at the booth for a term awaiting payment (exactly its price)" },
    Route { method: "post", path: "/v1/admin/rentals/{id}/renewal", audience: "staff", credential: "staff_token", summary: "Renew a paid term for the next whole months, before it lapses" },
    Route { method: "post", path: "/v1/admin/rentals/{id}/end", audience: "staff", credential: "staff_token", summary: "End a paid term early: its unused whole days are refunded, owed back to the renter" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/waiting-list", audience: "staff", credential: "staff_token", summary: "The compound's waiting list per kind of space, in the order owners are served" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/waiting-list", audience: "staff", credential: "staff_token", summary: "Put an owner on the waiting list for a kind of space" },
    Route { method: "delete", path: "/v1/admin/waiting-list/{id}", audience: "staff", credential: "staff_token", summary: "Withdraw an entry of the waiting list" },
    Route { method: "put", path: "/v1/admin/compounds/{id}/waiting-order", audience: "staff", credential: "staff_token", summary: "Set the order waiting owners are served in: first_come, without_space_first or fewest_spaces_first" },
    Route { method: "get", path: "/v1/operator/unbooked-receipts", audience: "operator", credential: "operator_token", summary: "Money providers reported that no firm's ledger could take: unknown intents, foreign currency" },
    Route { method: "get", path: "/v1/admin/ledger/firm-journal.csv", audience: "staff", credential: "staff_token", summary: "The firm's own transactions of no compound (unmatched settlement fees) in [from, to), as CSV" },
    Route { method: "get", path: "/v1/owner/statements", audience: "owner", credential: "owner_token", summary: "The owner's statements, newest first." },
    Route { method: "put", path: "/v1/owner/webhook", audience: "owner", credential: "owner_token", summary: "Register (or replace) the owner's webhook; answers the signing secret once." },
    Route { method: "post", path: "/v1/payments/callbacks/simulated", audience: "provider", credential: "", summary: "A provider's notification. Verified (signature, then amount and currency against the" },
    Route { method: "post", path: "/v1/simulated-provider/intents/{id}/pay", audience: "provider", credential: "", summary: "The simulated provider's \"driver paid\" button: answers at once, then calls back the" },
    Route { method: "get", path: "/v1/public/disclosure/{token}", audience: "public", credential: "", summary: "The public disclosure page: no login, an unguessable link." },
    Route { method: "get", path: "/v1/public/disclosure/{token}/data.csv", audience: "public", credential: "", summary: "The disclosure's figures as CSV" },
    Route { method: "get", path: "/v1/public/disclosure/{token}/data.json", audience: "public", credential: "", summary: "The disclosure's figures as JSON" },
    Route { method: "post", path: "/v1/public/lots/{lot_id}/payment-intents", audience: "public", credential: "", summary: "A driver asks to pay what their stay costs now: an intent for the amount due, valid for" },
    Route { method: "get", path: "/v1/public/lots/{lot_id}/price-board", audience: "public", credential: "", summary: "The lot's filed tariff in words, its filing number and standard (明码标价)" },
    Route { method: "get", path: "/v1/public/lots/{lot_id}/price-board.html", audience: "public", credential: "", summary: "The price board as a page" },
    Route { method: "get", path: "/v1/public/lots/{lot_id}/quote", audience: "public", credential: "", summary: "What a plate's stay costs now, itemised" },
    Route { method: "get", path: "/v1/public/lots/{lot}/availability", audience: "public", credential: "", summary: "Shared spaces free for the whole of `[from, to)`." },
    Route { method: "post", path: "/v1/public/lots/{lot}/bookings", audience: "public", credential: "", summary: "Book a shared space for a plate: held until paid through its payment intent (or confirmed at once when free)." },
    Route { method: "get", path: "/v1/public/payment-intents/{id}", audience: "public", credential: "", summary: "The intent and, once paid, the receipt: the itemised bill the amount came from." },
    Route { method: "get", path: "/v1/admin/compounds", audience: "staff", credential: "staff_token", summary: "The firm's compounds" },
    Route { method: "post", path: "/v1/admin/compounds", audience: "staff", credential: "staff_token", summary: "Create a compound with its time zone and gate policy" },
    Route { method: "get", path: "/v1/admin/compounds/{id}", audience: "staff", credential: "staff_token", summary: "A compound" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/blocklist", audience: "staff", credential: "staff_token", summary: "The compound's blocklist" },
    Route { method: "delete", path: "/v1/admin/compounds/{id}/blocklist/{plate}", audience: "staff", credential: "staff_token", summary: "Take a plate off the blocklist" },
    Route { method: "put", path: "/v1/admin/compounds/{id}/blocklist/{plate}", audience: "staff", credential: "staff_token", summary: "Blocklist a plate with a reason" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/committee-tokens", audience: "staff", credential: "staff_token", summary: "A read-only credential for the compound's owners' committee (shown once)." },
    Route { method: "get", path: "/v1/admin/compounds/{id}/disclosure", audience: "staff", credential: "staff_token", summary: "The compound's disclosure" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/disclosure-links", audience: "staff", credential: "staff_token", summary: "A new share link for the compound's disclosure (shown once; post it on the notice board)." },
    Route { method: "get", path: "/v1/admin/compounds/{id}/exempt-vehicles", audience: "staff", credential: "staff_token", summary: "The compound's exempt (emergency) vehicles" },
    Route { method: "put", path: "/v1/admin/compounds/{id}/exempt-vehicles/{plate}", audience: "staff", credential: "staff_token", summary: "Registers an exempt (emergency) vehicle, e.g. the local hospital's ambulance." },
    Route { method: "post", path: "/v1/admin/compounds/{id}/imports/{sheet}", audience: "staff", credential: "staff_token", summary: "Import owners, spaces or vehicles from CSV, all or nothing" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/lots", audience: "staff", credential: "staff_token", summary: "The compound's lots" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/lots", audience: "staff", credential: "staff_token", summary: "Create a lot with its visitor capacity and draft tariff" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/owners", audience: "staff", credential: "staff_token", summary: "The compound's owners" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/owners", audience: "staff", credential: "staff_token", summary: "Register an owner with their floor area" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/periods", audience: "staff", credential: "staff_token", summary: "The compound's closed periods, oldest first." },
    Route { method: "post", path: "/v1/admin/compounds/{id}/periods/close", audience: "staff", credential: "staff_token", summary: "Close (or preview closing) the compound's next period." },
    Route { method: "get", path: "/v1/admin/compounds/{id}/permits", audience: "staff", credential: "staff_token", summary: "The compound's permits" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/permits", audience: "staff", credential: "staff_token", summary: "Grant a monthly or owned-space permit" },
    Route { method: "put", path: "/v1/admin/compounds/{id}/policy", audience: "staff", credential: "staff_token", summary: "Replace the compound's gate policy" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/price-standards", audience: "staff", credential: "staff_token", summary: "The price authority's standards recorded for the compound" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/price-standards", audience: "staff", credential: "staff_token", summary: "Record a price authority's standard" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/revenue-policies", audience: "staff", credential: "staff_token", summary: "The compound's revenue policies, by effective date" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/revenue-policies", audience: "staff", credential: "staff_token", summary: "Add a revenue policy, effective now or later" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/vehicles", audience: "staff", credential: "staff_token", summary: "The compound's registered vehicles" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/vehicles", audience: "staff", credential: "staff_token", summary: "Register an owner's vehicle" },
    Route { method: "get", path: "/v1/admin/ledger/accounts", audience: "staff", credential: "staff_token", summary: "The firm's ledger accounts and balances" },
    Route { method: "get", path: "/v1/admin/ledger/check", audience: "staff", credential: "staff_token", summary: "Recomputes every balance from the postings and reports any account whose cached balance" },
    Route { method: "get", path: "/v1/admin/ledger/journal", audience: "staff", credential: "staff_token", summary: "The journal by session, by account or by day, a page of whole transactions at a time:" },
    Route { method: "get", path: "/v1/admin/lots/{id}", audience: "staff", credential: "staff_token", summary: "A lot" },
    Route { method: "patch", path: "/v1/admin/lots/{id}", audience: "staff", credential: "staff_token", summary: "Change a lot's capacity or draft tariff" },
    Route { method: "get", path: "/v1/admin/lots/{id}/anomalies", audience: "staff", credential: "staff_token", summary: "The lot's anomalies for staff; ?status=open for those not resolved yet" },
    Route { method: "post", path: "/v1/admin/anomalies/{id}/resolve", audience: "staff", credential: "staff_token", summary: "Closes an anomaly with what staff found or did" },
    Route { method: "put", path: "/v1/admin/gates/{id}/device", audience: "staff", credential: "staff_token", summary: "Sets a lane's camera protocol, serial, device login (never shown again; required for Hikvision), fail-open or fail-closed policy, heartbeat window and LED display protocol" },
    Route { method: "get", path: "/v1/admin/gates/{id}/commands", audience: "staff", credential: "staff_token", summary: "Barrier commands sent to the gate's device, with their outcome" },
    Route { method: "post", path: "/v1/admin/gates/{id}/manual-open", audience: "staff", credential: "staff_token", summary: "A staff member lifts the barrier, with a reason code; audited; expires if it cannot reach the barrier in time, and presses while one waits merge" },
    Route { method: "get", path: "/v1/admin/lots/{id}/manual-opens", audience: "staff", credential: "staff_token", summary: "The lot's manual opens: who, why, when, how the barrier was told" },
    Route { method: "post", path: "/v1/vendor/{token}/vzenith", audience: "gate", credential: "", summary: "Vzenith IVS camera push (AlarmInfoPlate, offline replay, heartbeat form in normal and comet mode); the token in the path is the gate's device secret" },
    Route { method: "post", path: "/v1/vendor/{token}/dahua/NotificationInfo/TollgateInfo", audience: "gate", credential: "", summary: "Dahua ITSAPI plate notification; the token in the path is the gate's device secret" },
    Route { method: "post", path: "/v1/vendor/{token}/dahua/NotificationInfo/KeepAlive", audience: "gate", credential: "", summary: "Dahua ITSAPI heartbeat, answered {Active: true, DeviceID}" },
    Route { method: "post", path: "/v1/vendor/{token}/dahua/NotificationInfo/DeviceInfo", audience: "gate", credential: "", summary: "Dahua ITSAPI device registration" },
    Route { method: "post", path: "/v1/vendor/{token}/hikvision", audience: "gate", credential: "", summary: "Hikvision ISAPI ANPR push (multipart, XML or JSON) and heartbeat; the barrier is opened by a digest call to the device" },
    Route { method: "get", path: "/v1/admin/lots/{id}/gates", audience: "staff", credential: "staff_token", summary: "The lot's gates (no secrets)" },
    Route { method: "post", path: "/v1/admin/lots/{id}/gates", audience: "staff", credential: "staff_token", summary: "Registers a gate (lane) and returns its device secret, shown this once only." },
    Route { method: "get", path: "/v1/admin/lots/{id}/occupancy", audience: "staff", credential: "staff_token", summary: "Occupancy of a lot as Redis holds it, compared with the open sessions in Postgres." },
    Route { method: "post", path: "/v1/admin/lots/{id}/occupancy/rebuild", audience: "staff", credential: "staff_token", summary: "Rebuilds the lot's occupancy from Postgres and reports the result." },
    Route { method: "get", path: "/v1/admin/lots/{id}/sessions", audience: "staff", credential: "staff_token", summary: "The lot's sessions, newest first (?status=open|closed)" },
    Route { method: "get", path: "/v1/admin/lots/{id}/spaces", audience: "staff", credential: "staff_token", summary: "The lot's spaces" },
    Route { method: "post", path: "/v1/admin/lots/{id}/spaces", audience: "staff", credential: "staff_token", summary: "Create a space: owned, common or developer_unsold" },
    Route { method: "get", path: "/v1/admin/lots/{id}/tariffs", audience: "staff", credential: "staff_token", summary: "The lot's filed tariff versions" },
    Route { method: "post", path: "/v1/admin/lots/{id}/tariffs", audience: "staff", credential: "staff_token", summary: "Files a tariff for a lot: refused with the offending stay if any stay up to the horizon" },
    Route { method: "get", path: "/v1/admin/owners/{id}/earnings", audience: "staff", credential: "staff_token", summary: "An owner's payable balance and earnings per month; staff read it here, owners at" },
    Route { method: "post", path: "/v1/admin/owners/{id}/tokens", audience: "staff", credential: "staff_token", summary: "Staff issue an owner their credential (shown once)." },
    Route { method: "post", path: "/v1/admin/payments/{id}/refunds", audience: "staff", credential: "staff_token", summary: "Refunds part or all of a payment by a reversing transaction: every account the payment" },
    Route { method: "get", path: "/v1/admin/periods/{id}/journal.beancount", audience: "staff", credential: "staff_token", summary: "The period's journal in beancount syntax; it balances and opens in bean-check and Fava." },
    Route { method: "get", path: "/v1/admin/periods/{id}/journal.csv", audience: "staff", credential: "staff_token", summary: "The period's postings, one row each." },
    Route { method: "get", path: "/v1/admin/periods/{id}/statements", audience: "staff", credential: "staff_token", summary: "Every owner's statement for a closed period." },
    Route { method: "get", path: "/v1/admin/reconciliations", audience: "staff", credential: "staff_token", summary: "Earlier reconciliations, newest first." },
    Route { method: "post", path: "/v1/admin/reconciliations", audience: "staff", credential: "staff_token", summary: "Import a provider's settlement file and reconcile it." },
    Route { method: "get", path: "/v1/admin/refunds-owed", audience: "staff", credential: "staff_token", summary: "What the firm owes back to drivers, oldest first." },
    Route { method: "post", path: "/v1/admin/refunds-owed/{id}/payouts", audience: "staff", credential: "staff_token", summary: "Records that a receipt owed back was paid back; once per receipt." },
    Route { method: "get", path: "/v1/admin/sessions/{id}/payments", audience: "staff", credential: "staff_token", summary: "A session's payments and refunds" },
    Route { method: "post", path: "/v1/admin/sessions/{id}/payments", audience: "staff", credential: "staff_token", summary: "Cash taken at a staffed booth for a session. The next exit read within the grace opens." },
    Route { method: "get", path: "/v1/admin/sessions/{id}/quote", audience: "staff", credential: "staff_token", summary: "What the session would cost if it left at `at` (default now)." },
    Route { method: "get", path: "/v1/admin/webhook-deliveries", audience: "staff", credential: "staff_token", summary: "The firm's recent webhook deliveries and their outcome." },
    Route { method: "get", path: "/v1/supervisor/compounds", audience: "supervisor", credential: "supervisor_token", summary: "Each supervised compound with the totals of its latest closed period." },
    Route { method: "get", path: "/v1/public/bookings/{id}", audience: "visitor", credential: "booking_token", summary: "A booking, for the visitor holding its token." },
    Route { method: "post", path: "/v1/public/bookings/{id}/cancel", audience: "visitor", credential: "booking_token", summary: "Cancel a booking: free until its free-cancellation time, then the late fee." },
    Route { method: "get", path: "/v1/admin/staff-tokens", audience: "staff", credential: "staff_token", summary: "The firm's staff tokens (no secrets); `current` marks the caller's" },
    Route { method: "post", path: "/v1/admin/staff-tokens/{id}/revoke", audience: "staff", credential: "staff_token", summary: "Revoke a staff token of the firm (the caller's own included)" },
    Route { method: "post", path: "/v1/admin/staff-tokens/{id}/rotate", audience: "staff", credential: "staff_token", summary: "Replace a staff token of the firm: the new one shown once, the old one revoked" },
    Route { method: "get", path: "/v1/admin/owners/{id}/tokens", audience: "staff", credential: "staff_token", summary: "The owner's tokens (no secrets)" },
    Route { method: "post", path: "/v1/admin/owners/{id}/tokens/{token_id}/revoke", audience: "staff", credential: "staff_token", summary: "Revoke an owner's token" },
    Route { method: "post", path: "/v1/admin/owners/{id}/tokens/{token_id}/rotate", audience: "staff", credential: "staff_token", summary: "Replace an owner's token: the new one shown once, the old one revoked" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/committee-tokens", audience: "staff", credential: "staff_token", summary: "The compound's committee tokens (no secrets)" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/committee-tokens/{token_id}/revoke", audience: "staff", credential: "staff_token", summary: "Revoke a committee token" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/committee-tokens/{token_id}/rotate", audience: "staff", credential: "staff_token", summary: "Replace a committee token: the new one shown once, the old one revoked" },
    Route { method: "get", path: "/v1/admin/compounds/{id}/disclosure-links", audience: "staff", credential: "staff_token", summary: "The compound's share links (never the link itself)" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/disclosure-links/{link_id}/revoke", audience: "staff", credential: "staff_token", summary: "Withdraw a share link" },
    Route { method: "post", path: "/v1/admin/compounds/{id}/disclosure-links/{link_id}/rotate", audience: "staff", credential: "staff_token", summary: "A new share link in place of the old one, which stops at once" },
    Route { method: "post", path: "/v1/admin/gates/{id}/device-secret/revoke", audience: "staff", credential: "staff_token", summary: "The gate's device secret stops working until it is rotated" },
    Route { method: "post", path: "/v1/admin/gates/{id}/device-secret/rotate", audience: "staff", credential: "staff_token", summary: "A new device secret for the gate, shown once; the old one stops at once" },
    Route { method: "post", path: "/v1/admin/bookings/{id}/token/revoke", audience: "staff", credential: "staff_token", summary: "The booking's token stops working" },
    Route { method: "get", path: "/v1/admin/credential-audit", audience: "staff", credential: "staff_token", summary: "Who issued, revoked and rotated the firm's credentials, newest first" },
    Route { method: "get", path: "/v1/operator/tenants/{id}/staff-tokens", audience: "operator", credential: "operator_token", summary: "A firm's staff tokens (no secrets)" },
    Route { method: "post", path: "/v1/operator/tenants/{id}/staff-tokens", audience: "operator", credential: "operator_token", summary: "A new staff token for a firm, shown once" },
    Route { method: "post", path: "/v1/operator/tenants/{id}/staff-tokens/{token_id}/revoke", audience: "operator", credential: "operator_token", summary: "Revoke a firm's staff token" },
    Route { method: "post", path: "/v1/operator/tenants/{id}/staff-tokens/{token_id}/rotate", audience: "operator", credential: "operator_token", summary: "Replace a firm's staff token: the new one shown once, the old one revoked" },
    Route { method: "get", path: "/v1/operator/supervisors", audience: "operator", credential: "operator_token", summary: "The supervisors and whether their tokens are revoked" },
    Route { method: "post", path: "/v1/operator/supervisors/{id}/token/revoke", audience: "operator", credential: "operator_token", summary: "Revoke a supervisor's token" },
    Route { method: "post", path: "/v1/operator/supervisors/{id}/token/rotate", audience: "operator", credential: "operator_token", summary: "A new token for the supervisor, shown once (also after a revocation)" },
    Route { method: "post", path: "/v1/public/bookings/{id}/token/rotate", audience: "visitor", credential: "booking_token", summary: "A new token for the booking, shown once; the one presented stops at once" },
    Route { method: "post", path: "/v1/public/bookings/{id}/token/revoke", audience: "visitor", credential: "booking_token", summary: "The holder gives up the booking's token (the booking stands)" },
];

/// The credentials, for the security schemes.
const CREDENTIALS: [(&str, &str); 6] = [
    (
        "staff_token",
        "A property firm's staff token (tenant-scoped; other firms' objects answer 404).",
    ),
    (
        "owner_token",
        "An owner's token, issued by their property firm.",
    ),
    (
        "booking_token",
        "The visitor's token answered when the booking was made.",
    ),
    (
        "committee_token",
        "The owners' committee's read-only token for one compound.",
    ),
    (
        "supervisor_token",
        "A supervisor's (street office's) token, issued by the operator.",
    ),
    (
        "operator_token",
        "The platform operator's token (PARKSHARE_OPERATOR_TOKEN).",
    ),
];

/// Adds every route not described by annotations, with its summary, audience and credential,
/// and the common error answer.
struct Catalogue;

impl Modify for Catalogue {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{HttpMethod, OperationBuilder};
        use utoipa::openapi::security::SecurityRequirement;
        use utoipa::openapi::ResponseBuilder;
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, description) in CREDENTIALS {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(description))
                        .build(),
                ),
            );
        }
        for route in ROUTES {
            if route.path == "/v1/gate/events" {
                continue; // described in full by its annotations
            }
            let method = match route.method {
                "get" => HttpMethod::Get,
                "post" => HttpMethod::Post,
                "put" => HttpMethod::Put,
                "delete" => HttpMethod::Delete,
                _ => HttpMethod::Patch,
            };
            let mut operation = OperationBuilder::new()
                .summary(Some(route.summary))
                .tag(route.audience)
                .response("2XX", ResponseBuilder::new().description("Success"))
                .response(
                    "4XX",
                    ResponseBuilder::new().description(
                        "`{\"error\": {\"code\", \"message\"}}` with a stable code; nothing was changed",
                    ),
                );
            if !route.credential.is_empty() {
                operation = operation.security(SecurityRequirement::new(
                    route.credential,
                    Vec::<String>::new(),
                ));
            }
            openapi
                .paths
                .add_path_operation(route.path, vec![method], operation.build());
        }
    }
}

struct DeviceToken;

impl Modify for DeviceToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "device_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The gate's device secret, issued when the gate is registered.",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(openapi_json).service(docs);
}

/// The API page for people: every operation of the OpenAPI document with its description,
/// request and answers, rendered on the server (no script, no outside resource).
#[get("/docs")]
async fn docs() -> HttpResponse {
    let doc = serde_json::to_value(GateApi::openapi()).unwrap_or_default();
    let esc = crate::disclosure::page::escape;
    let text = |v: &serde_json::Value| esc(v.as_str().unwrap_or_default());
    let mut body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title><style>body{{font-family:sans-serif;max-width:60rem;margin:auto;padding:1rem}}code{{background:#eee;padding:0 .2rem}}table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:.2rem .5rem;text-align:left}}</style></head><body><h1>{title}</h1><p>{desc}</p><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a>.</p>",
        title = text(&doc["info"]["title"]),
        desc = text(&doc["info"]["description"]),
    );
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                let about = if op["description"].is_string() {
                    &op["description"]
                } else {
                    &op["summary"]
                };
                let who = op["tags"][0].as_str().unwrap_or_default();
                body.push_str(&format!(
                    "<h2><code>{} {}</code></h2><p>{} <em>({})</em></p><table><tr><th>status</th><th>meaning</th></tr>",
                    esc(&method.to_uppercase()),
                    esc(path),
                    text(about).replace('\n', "<br>"),
                    esc(who)
                ));
                if let Some(responses) = op["responses"].as_object() {
                    for (code, response) in responses {
                        body.push_str(&format!(
                            "<tr><td>{}</td><td>{}</td></tr>",
                            esc(code),
                            text(&response["description"])
                        ));
                    }
                }
                body.push_str("</table>");
            }
        }
    }
    body.push_str("</body></html>");
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body)
}

#[get("/openapi.json")]
async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(GateApi::openapi())
}
