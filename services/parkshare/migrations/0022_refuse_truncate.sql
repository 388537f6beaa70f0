-- Append-only tables refuse TRUNCATE as they refuse UPDATE and DELETE: `truncate postings
-- cascade` emptied the ledger, which its row triggers cannot see (issue 21, item 7). The list
-- is every table with a `refuse_change` row trigger.
do $$
declare
    append_only text;
begin
    foreach append_only in array array[
        'tariff_versions', 'price_standards', 'revenue_policies', 'journal_transactions',
        'postings', 'booking_events', 'accounting_periods', 'owner_statements',
        'reconciliations', 'manual_opens', 'credential_audit'
    ] loop
        execute format(
            'create trigger %I before truncate on %I for each statement execute function refuse_change()',
            append_only || '_no_truncate', append_only);
    end loop;
end
$$;
