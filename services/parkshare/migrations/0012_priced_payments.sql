-- A driver pays the quote they were shown. The quote is priced at one instant and paid a
-- little later; a price step between the two must not refuse the car that paid it. So each
-- payment keeps the instant its amount was priced at, and a stay is billed to that instant
-- within the exit grace that follows the payment.
alter table payment_intents add column priced_at timestamptz;
update payment_intents set priced_at = created_at;
alter table payment_intents alter column priced_at set not null;

alter table session_payments add column priced_at timestamptz;
update session_payments set priced_at = recorded_at;
alter table session_payments alter column priced_at set not null;

alter table sessions add column last_paid_priced_at timestamptz;
update sessions set last_paid_priced_at = last_paid_at;
alter table sessions add constraint sessions_last_payment_whole
    check ((last_paid_at is null) = (last_paid_priced_at is null));
