-- Money owed back to a driver (an unmatched receipt: a second charge, an overpayment, a late or
-- mismatched payment) is paid back by a `refund_payout` transaction: refunds_payable against
-- the money's source (issue 21: there was no way to settle what the ledger owed back).
alter table journal_transactions drop constraint journal_transactions_kind_check;
alter table journal_transactions add constraint journal_transactions_kind_check
    check (kind in ('payment', 'refund', 'unmatched_receipt', 'period_close', 'provider_fees',
                    'refund_payout'));
