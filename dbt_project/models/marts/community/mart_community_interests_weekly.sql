with

activities as (
    select * from {{ ref('int_community_activities') }}
),

spaces as (
    select * from {{ ref('dim_community_spaces') }}
),

activities_with_space_interest as (
    select
        activities.activity_id,
        activities.member_key,
        activities.brand_links,
        activities.keyword_interest,
        cast(date_trunc('week', activities.occurred_at) as date) as week_start,
        coalesce(spaces.interest, 'general') as space_interest
    from activities
    left join spaces on activities.space_id = spaces.space_id
),

activities_by_interest as (
    select
        activities_with_space_interest.week_start,
        -- in a `general` space, the text's first keyword (found in int_community_activities)
        case
            when activities_with_space_interest.space_interest = 'general'
                then coalesce(activities_with_space_interest.keyword_interest, 'general')
            else activities_with_space_interest.space_interest
        end as interest,
        activities_with_space_interest.member_key,
        activities_with_space_interest.brand_links
    from activities_with_space_interest
),

interest_weeks as (
    select
        week_start,
        interest,
        count(*) as activities,
        count(distinct member_key) as active_members,
        -- null when the brand's domains are not set (brand.domains): unknown, not 0
        coalesce(sum(len(brand_links)), {{ 0 if brand_domains_set() else 'null' }})::bigint as brand_links_shared
    from activities_by_interest
    group by week_start, interest
),

-- every week x interest from the first to the last week, so weeks without activity count as 0
week_spine as (
    select cast(unnest(generate_series(min(week_start), max(week_start), interval '7 days')) as date) as week_start
    from interest_weeks
),

loaded_interests as (
    select distinct interest from interest_weeks
),

week_interest_grid as (
    select
        week_spine.week_start,
        loaded_interests.interest
    from week_spine
    cross join loaded_interests
),

interest_weeks_filled as (
    select
        week_interest_grid.week_start,
        week_interest_grid.interest,
        coalesce(interest_weeks.activities, 0) as activities,
        coalesce(interest_weeks.active_members, 0) as active_members,
        coalesce(interest_weeks.brand_links_shared, {{ 0 if brand_domains_set() else 'null' }}) as brand_links_shared
    from week_interest_grid
    left join interest_weeks
        on week_interest_grid.week_start = interest_weeks.week_start
        and week_interest_grid.interest = interest_weeks.interest
),

interest_weeks_with_prior_4w as (
    select
        *,
        avg(activities) over (
            partition by interest order by week_start rows between 4 preceding and 1 preceding
        ) as prior_4w_mean,
        count(*) over (
            partition by interest order by week_start rows between 4 preceding and 1 preceding
        ) as prior_weeks
    from interest_weeks_filled
),

final as (
    select
        week_start,
        interest,
        activities,
        active_members,
        brand_links_shared,
        case
            when prior_weeks = 4 and prior_4w_mean > 0
                then activities / prior_4w_mean - 1
        end::double as growth_vs_prior_4w
    from interest_weeks_with_prior_4w
)

select * from final
