-- Reconciling providers' settlement files (issue 6): the providers' fees become an expense
-- account, booked once per imported file.

alter table ledger_accounts drop constraint ledger_accounts_kind_check;
alter table ledger_accounts add constraint ledger_accounts_kind_check check (kind in (
    'provider_clearing', 'cash_on_hand', 'owner_payable', 'common_revenue', 'management_income',
    'platform_fee_income', 'developer_payable', 'maintenance_fund', 'refunds_payable', 'provider_fees'));

alter table journal_transactions drop constraint journal_transactions_kind_check;
alter table journal_transactions add constraint journal_transactions_kind_check
    check (kind in ('payment', 'refund', 'unmatched_receipt', 'period_close', 'provider_fees'));

create table reconciliations (
    id                  uuid primary key,
    tenant_id           uuid not null references tenants (id),
    provider            text not null,
    -- The same file imported again answers the first import.
    file_sha256         bytea not null,
    covers_from         timestamptz not null,
    covers_to           timestamptz not null check (covers_to > covers_from),
    rows                integer not null,
    report              jsonb not null,
    fee_transaction_id  uuid references journal_transactions (id),
    created_at          timestamptz not null default now(),
    constraint reconciliations_file_key unique (tenant_id, file_sha256)
);
create trigger reconciliations_immutable before update or delete on reconciliations
    for each row execute function refuse_change();
