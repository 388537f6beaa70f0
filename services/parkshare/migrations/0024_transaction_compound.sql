-- Every transaction names the compound it belongs to, so a period's journal is "the compound's
-- transactions booked in the period": its stays' payments and refunds, its bookings'
-- prepayments (no stay yet), its provider fees and its close (issue 21, item 6: the export left
-- out the provider-fee and booking transactions, so summed exports disagreed with the ledger).
-- Null only for money no compound can be named for (a provider's fee on a row that matched none
-- of our payments); those are in the firm's journal.
alter table journal_transactions add column compound_id uuid references compounds (id);

-- The backfill is the one change ever made to booked transactions: it adds a fact that was
-- already implied (the stay's, booking's or period's compound), and changes no amount.
alter table journal_transactions disable trigger journal_transactions_append_only;
update journal_transactions t set compound_id = s.compound_id
  from sessions s where s.id = t.session_id;
update journal_transactions t set compound_id = b.compound_id
  from bookings b where b.id = t.booking_id and t.compound_id is null;
update journal_transactions t set compound_id = p.compound_id
  from accounting_periods p where p.transaction_id = t.id and t.compound_id is null;
alter table journal_transactions enable trigger journal_transactions_append_only;

create index journal_transactions_compound on journal_transactions (compound_id, created_at);
