-- Payments and the double-entry settlement ledger (issue 5).
--
-- The ledger is append-only: journal transactions and their postings are never updated or
-- deleted (a refund is a new, reversing transaction), and the database itself refuses a
-- transaction whose postings do not sum to zero. Account balances are a cache maintained by a
-- trigger; GET /v1/admin/ledger/check recomputes them from the postings.

-- Which space a stay used, when it used a particular one (a booked shared space, issue 4);
-- null means the lot's visitor pool.
alter table sessions add column space_id uuid;
alter table sessions add foreign key (tenant_id, space_id) references spaces (tenant_id, id);

-- Who gets what from a paid stay in a compound; versioned, forward only.
create table revenue_policies (
    id              uuid primary key,
    tenant_id       uuid not null,
    compound_id     uuid not null,
    -- parkshare_ledger::RevenuePolicy as JSON.
    policy          jsonb not null,
    effective_from  timestamptz not null,
    created_at      timestamptz not null default now(),
    foreign key (tenant_id, compound_id) references compounds (tenant_id, id),
    unique (compound_id, effective_from)
);
create trigger revenue_policies_immutable before update or delete on revenue_policies
    for each row execute function refuse_change();

create table ledger_accounts (
    kind       text not null check (kind in ('provider_clearing', 'cash_on_hand', 'owner_payable',
                   'common_revenue', 'management_income', 'platform_fee_income', 'developer_payable',
                   'maintenance_fund', 'refunds_payable')),
    -- An owner, a compound or a property firm, depending on the kind.
    holder_id  uuid not null,
    tenant_id  uuid not null,
    -- Cache of the sum of the account's postings (debit positive), kept by a trigger.
    balance    numeric(14, 2) not null default 0,
    primary key (kind, holder_id)
);
create index ledger_accounts_tenant on ledger_accounts (tenant_id, kind);

create table journal_transactions (
    id               uuid primary key,
    tenant_id        uuid not null,
    -- Every posting request carries one; a repeat returns the first transaction.
    idempotency_key  text not null check (length(idempotency_key) between 1 and 200),
    kind             text not null check (kind in ('payment', 'refund', 'unmatched_receipt')),
    session_id       uuid references sessions (id),
    payment_id       uuid,
    memo             text not null,
    created_at       timestamptz not null default now(),
    constraint journal_transactions_idempotency_key unique (tenant_id, idempotency_key)
);
create index journal_transactions_session on journal_transactions (session_id);
create index journal_transactions_day on journal_transactions (tenant_id, created_at);

create table postings (
    id              bigint generated always as identity primary key,
    transaction_id  uuid not null references journal_transactions (id),
    account_kind    text not null,
    account_holder  uuid not null,
    -- Debit positive, credit negative.
    amount          numeric(14, 2) not null check (amount <> 0),
    foreign key (account_kind, account_holder) references ledger_accounts (kind, holder_id)
);
create index postings_transaction on postings (transaction_id);
create index postings_account on postings (account_kind, account_holder, id);

create trigger journal_transactions_append_only before update or delete on journal_transactions
    for each row execute function refuse_change();
create trigger postings_append_only before update or delete on postings
    for each row execute function refuse_change();

-- At commit, every transaction that received postings must balance and have at least two.
create function check_transaction_balanced() returns trigger language plpgsql as $$
declare
    total numeric;
    n     integer;
begin
    select coalesce(sum(amount), 0), count(*) into total, n
      from postings where transaction_id = new.transaction_id;
    if total <> 0 or n < 2 then
        raise exception 'journal transaction % does not balance (sum %, % postings)',
            new.transaction_id, total, n using errcode = 'P0002';
    end if;
    return null;
end
$$;
create constraint trigger postings_balanced after insert on postings
    deferrable initially deferred for each row execute function check_transaction_balanced();

-- A transaction with no postings at all is refused too.
create function check_transaction_has_postings() returns trigger language plpgsql as $$
begin
    if not exists (select 1 from postings where transaction_id = new.id) then
        raise exception 'journal transaction % has no postings', new.id using errcode = 'P0002';
    end if;
    return null;
end
$$;
create constraint trigger journal_transactions_have_postings after insert on journal_transactions
    deferrable initially deferred for each row execute function check_transaction_has_postings();

create function add_to_balance() returns trigger language plpgsql as $$
begin
    update ledger_accounts set balance = balance + new.amount
     where kind = new.account_kind and holder_id = new.account_holder;
    return null;
end
$$;
create trigger postings_update_balance after insert on postings
    for each row execute function add_to_balance();

-- Payment intents: one amount due, to be paid through a provider.
create table payment_intents (
    id           uuid primary key,
    tenant_id    uuid not null,
    session_id   uuid not null references sessions (id),
    amount       numeric(12, 2) not null check (amount > 0),
    currency     text not null check (currency = 'CNY'),
    provider     text not null check (provider in ('simulated')),
    status       text not null check (status in ('pending', 'paid', 'expired', 'cancelled')),
    expires_at   timestamptz not null,
    paid_at      timestamptz,
    -- The itemised bill the amount came from, for the driver's receipt.
    bill         jsonb not null,
    filing_no    text,
    created_at   timestamptz not null default now()
);
-- At most one intent a driver can still pay per session.
create unique index payment_intents_one_pending on payment_intents (session_id) where status = 'pending';

-- Every provider notification received, with what was done with it.
create table provider_callbacks (
    id               uuid primary key,
    provider         text not null,
    notification_id  text not null,
    intent_id        uuid references payment_intents (id),
    amount           numeric(12, 2),
    outcome          text not null check (outcome in ('credited', 'duplicate', 'late', 'amount_mismatch', 'unknown_intent')),
    body             jsonb not null,
    received_at      timestamptz not null default now()
);
create index provider_callbacks_intent on provider_callbacks (intent_id);

-- Payments extend the gate core's staff-marked ones: cash at a booth (with the staff shift)
-- and provider payments (with their intent). A payment's refunds are reversing transactions.
alter table session_payments drop constraint session_payments_method_check;
alter table session_payments add constraint session_payments_method_check
    check (method in ('staff_marked', 'cash', 'provider'));
alter table session_payments add column intent_id uuid references payment_intents (id);
alter table session_payments add column shift text;
alter table session_payments add column transaction_id uuid references journal_transactions (id);
alter table session_payments add column refunded numeric(12, 2) not null default 0;
alter table session_payments add constraint session_payments_refund_at_most_paid check (refunded between 0 and amount);
create unique index session_payments_one_per_intent on session_payments (intent_id) where intent_id is not null;

create table payment_refunds (
    id              uuid primary key,
    payment_id      uuid not null references session_payments (id),
    amount          numeric(12, 2) not null check (amount > 0),
    reason          text not null check (length(reason) between 1 and 500),
    transaction_id  uuid not null references journal_transactions (id),
    created_at      timestamptz not null default now()
);
