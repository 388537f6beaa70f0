-- Append-only tables refuse TRUNCATE as they refuse UPDATE and DELETE: `truncate postings
-- cascade` emptied the ledger, which its row triggers cannot see (issue 21, item 7).
create trigger tariff_versions_no_truncate before truncate on tariff_versions
    for each statement execute function refuse_change();
create trigger price_standards_no_truncate before truncate on price_standards
    for each statement execute function refuse_change();
create trigger revenue_policies_no_truncate before truncate on revenue_policies
    for each statement execute function refuse_change();
create trigger journal_transactions_no_truncate before truncate on journal_transactions
    for each statement execute function refuse_change();
create trigger postings_no_truncate before truncate on postings
    for each statement execute function refuse_change();
create trigger booking_events_no_truncate before truncate on booking_events
    for each statement execute function refuse_change();
create trigger accounting_periods_no_truncate before truncate on accounting_periods
    for each statement execute function refuse_change();
create trigger owner_statements_no_truncate before truncate on owner_statements
    for each statement execute function refuse_change();
create trigger reconciliations_no_truncate before truncate on reconciliations
    for each statement execute function refuse_change();
create trigger manual_opens_no_truncate before truncate on manual_opens
    for each statement execute function refuse_change();
create trigger credential_audit_no_truncate before truncate on credential_audit
    for each statement execute function refuse_change();
