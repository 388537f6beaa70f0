-- Developer spaces left unsold (issue 26; DOMAIN.md rule 3): since when each is offered for
-- sale, and how it is offered now. Offered for sale only for more than two years, it must be
-- offered for rent to owners or run as metered parking (parkshare_allocation::unsold).
-- Only a developer-unsold space has a date or an offer other than the default, which the
-- other kinds carry unread.

alter table spaces
    add column for_sale_since date,
    add column offered_as text not null default 'sale'
        check (offered_as in ('sale', 'rent_to_owners', 'metered')),
    add constraint spaces_unsold_offer
        check (kind = 'developer_unsold' or (for_sale_since is null and offered_as = 'sale'));
