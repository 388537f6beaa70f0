-- Accounting periods of a compound's common revenue (issue 6). Periods are contiguous: each
-- starts where the previous one ended. Closing one posts a 'period_close' transaction that
-- empties the common-revenue account into the maintenance fund and the owners' accounts; a
-- closed period is never rewritten: events that arrive later land in the next period.

alter table journal_transactions drop constraint journal_transactions_kind_check;
alter table journal_transactions add constraint journal_transactions_kind_check
    check (kind in ('payment', 'refund', 'unmatched_receipt', 'period_close'));

create table accounting_periods (
    id              uuid primary key,
    tenant_id       uuid not null,
    compound_id     uuid not null references compounds (id),
    label           text not null,
    starts_at       timestamptz not null,
    ends_at         timestamptz not null check (ends_at > starts_at),
    -- What the close found and did (sources, adjustments, split), as shown to people.
    summary         jsonb not null,
    transaction_id  uuid references journal_transactions (id),
    closed_at       timestamptz not null default now(),
    constraint accounting_periods_start_key unique (compound_id, starts_at),
    constraint accounting_periods_end_key unique (compound_id, ends_at)
);
create trigger accounting_periods_immutable before update or delete on accounting_periods
    for each row execute function refuse_change();

-- Each owner's statement for a closed period.
create table owner_statements (
    period_id      uuid not null references accounting_periods (id),
    owner_id       uuid not null references owners (id),
    tenant_id      uuid not null,
    floor_area_m2  numeric(12, 2) not null,
    credited       numeric(14, 2) not null check (credited >= 0),
    primary key (period_id, owner_id)
);
create index owner_statements_owner on owner_statements (owner_id);
create trigger owner_statements_immutable before update or delete on owner_statements
    for each row execute function refuse_change();
