-- Indexes for the lookups that had none, each of which read its whole table: a cash payment's
-- answer is read back by its journal transaction (`payment_by_key`) on every payment, a
-- session's payments are listed by session, a refund is found by its transaction, and a
-- shared-space exit finds its booking by session. A load run of the car mix spent more
-- Postgres time reading back payments than on anything else, growing with every payment
-- stored (load-tests/README.md, "A plan made for an empty table, and lookups without an
-- index").
create index session_payments_transaction on session_payments (transaction_id);
create index session_payments_session on session_payments (session_id, recorded_at);
create index payment_refunds_transaction on payment_refunds (transaction_id);
create index bookings_session on bookings (session_id) where session_id is not null;
