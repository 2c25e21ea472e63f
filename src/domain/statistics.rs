//! Item statistics of a test (Moodle's quiz statistics): from sums the database aggregates over
//! the submitted attempts, the test's mean, spread and reliability, and each question's
//! facility and discrimination. Scores are in marks; an unanswered question scores 0.

/// Sums over the submitted attempts: how many, and their scores' sum and sum of squares.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TotalSums {
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

/// Sums of one question's scores over the same attempts (0 where unanswered): the sum, the
/// sum of squares, and the sum of its score times the attempt's total.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ItemSums {
    pub sum: f64,
    pub sum_sq: f64,
    pub sum_times_total: f64,
}

/// The test's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestFigures {
    pub mean: Option<f64>,
    /// Of the sample (n - 1); `None` below two attempts.
    pub standard_deviation: Option<f64>,
    /// Cronbach's alpha (equal to KR-20 when every item is right or wrong); `None` below two
    /// attempts or two items, or when the totals do not vary.
    pub alpha: Option<f64>,
}

/// One question's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ItemFigures {
    /// Mean score over its marks (0 to 1); `None` for a question of no marks.
    pub facility: Option<f64>,
    /// Pearson correlation of the item's score with the rest of the test's (total minus the
    /// item); `None` when either does not vary.
    pub discrimination: Option<f64>,
}

fn population_variance(n: f64, sum: f64, sum_sq: f64) -> f64 {
    (sum_sq / n - (sum / n).powi(2)).max(0.0)
}

/// The test's figures from its totals and its items' sums (`k` = the items).
pub fn test_figures(totals: TotalSums, items: &[ItemSums]) -> TestFigures {
    let n = totals.n as f64;
    if totals.n == 0 {
        return TestFigures {
            mean: None,
            standard_deviation: None,
            alpha: None,
        };
    }
    let mean = totals.sum / n;
    let standard_deviation = (totals.n >= 2).then(|| {
        let squares = (totals.sum_sq - totals.sum * totals.sum / n).max(0.0);
        (squares / (n - 1.0)).sqrt()
    });
    let k = items.len() as f64;
    let total_var = population_variance(n, totals.sum, totals.sum_sq);
    let alpha = (totals.n >= 2 && items.len() >= 2 && total_var > 1e-12).then(|| {
        let item_var: f64 = items
            .iter()
            .map(|i| population_variance(n, i.sum, i.sum_sq))
            .sum();
        k / (k - 1.0) * (1.0 - item_var / total_var)
    });
    TestFigures {
        mean: Some(mean),
        standard_deviation,
        alpha,
    }
}

/// One item's figures, over the attempts of `totals`, for a question worth `marks`.
pub fn item_figures(totals: TotalSums, item: ItemSums, marks: f64) -> ItemFigures {
    let n = totals.n as f64;
    if totals.n == 0 {
        return ItemFigures {
            facility: None,
            discrimination: None,
        };
    }
    let facility = (marks > 0.0).then(|| item.sum / n / marks);
    // The rest of the test: y = total - x.
    let (sx, sxx) = (item.sum, item.sum_sq);
    let sy = totals.sum - sx;
    let sxy = item.sum_times_total - sxx;
    let syy = totals.sum_sq - 2.0 * item.sum_times_total + sxx;
    let cov = n * sxy - sx * sy;
    let vx = n * sxx - sx * sx;
    let vy = n * syy - sy * sy;
    let discrimination =
        (vx > 1e-9 && vy > 1e-9).then(|| (cov / (vx * vy).sqrt()).clamp(-1.0, 1.0));
    ItemFigures {
        facility,
        discrimination,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Scores by attempt (rows) and item (columns): the sums the database would give.
    fn sums(scores: &[Vec<f64>]) -> (TotalSums, Vec<ItemSums>) {
        let k = scores.first().map_or(0, Vec::len);
        let totals: Vec<f64> = scores.iter().map(|r| r.iter().sum()).collect();
        let t = TotalSums {
            n: scores.len() as u64,
            sum: totals.iter().sum(),
            sum_sq: totals.iter().map(|x| x * x).sum(),
        };
        let items = (0..k)
            .map(|j| ItemSums {
                sum: scores.iter().map(|r| r[j]).sum(),
                sum_sq: scores.iter().map(|r| r[j] * r[j]).sum(),
                sum_times_total: scores.iter().zip(&totals).map(|(r, t)| r[j] * t).sum(),
            })
            .collect();
        (t, items)
    }

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a figure");
        assert!((a - b).abs() < 1e-4, "{a} against {b}");
    }

    /// Four learners, three one-mark questions: A 1 1 1, B 1 1 0, C 1 0 0, D 0 0 0.
    /// Worked by hand in `docs/decisions.md` ("Item statistics").
    #[test]
    fn the_hand_worked_fixture() {
        let (t, items) = sums(&[
            vec![1.0, 1.0, 1.0],
            vec![1.0, 1.0, 0.0],
            vec![1.0, 0.0, 0.0],
            vec![0.0, 0.0, 0.0],
        ]);
        let f = test_figures(t, &items);
        close(f.mean, 1.5);
        close(f.standard_deviation, (5.0f64 / 3.0).sqrt());
        close(f.alpha, 0.75);
        let q: Vec<ItemFigures> = items.iter().map(|i| item_figures(t, *i, 1.0)).collect();
        close(q[0].facility, 0.75);
        close(q[1].facility, 0.5);
        close(q[2].facility, 0.25);
        close(q[0].discrimination, 0.75 / (0.75f64 * 2.75).sqrt());
        close(q[1].discrimination, 1.0 / 2.0f64.sqrt());
        close(q[2].discrimination, 0.75 / (0.75f64 * 2.75).sqrt());
    }

    #[test]
    fn undefined_figures_are_none() {
        let (t, items) = sums(&[vec![1.0, 1.0]]);
        let f = test_figures(t, &items);
        assert_eq!((f.standard_deviation, f.alpha), (None, None));
        assert_eq!(item_figures(t, items[0], 1.0).discrimination, None);
        assert_eq!(item_figures(t, items[0], 0.0).facility, None);
        let empty = test_figures(TotalSums::default(), &[]);
        assert_eq!(empty.mean, None);
        // Everyone scored the same: no spread, no reliability.
        let (t, items) = sums(&[vec![1.0, 0.0], vec![1.0, 0.0]]);
        assert_eq!(test_figures(t, &items).alpha, None);
    }

    proptest! {
        /// The figures from sums agree with the textbook formulas applied to the scores.
        #[test]
        fn sums_give_the_textbook_figures(
            scores in proptest::collection::vec(proptest::collection::vec(0u8..=4, 3), 2..30)
        ) {
            let scores: Vec<Vec<f64>> = scores
                .iter()
                .map(|r| r.iter().map(|x| f64::from(*x) / 2.0).collect())
                .collect();
            let (t, items) = sums(&scores);
            let n = scores.len() as f64;
            let totals: Vec<f64> = scores.iter().map(|r| r.iter().sum()).collect();
            let mean = totals.iter().sum::<f64>() / n;
            let f = test_figures(t, &items);
            prop_assert!((f.mean.unwrap() - mean).abs() < 1e-9);
            let sd = (totals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            prop_assert!((f.standard_deviation.unwrap() - sd).abs() < 1e-9);
            for (j, item) in items.iter().enumerate() {
                let x: Vec<f64> = scores.iter().map(|r| r[j]).collect();
                let y: Vec<f64> = totals.iter().zip(&x).map(|(t, x)| t - x).collect();
                let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
                let cov: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
                let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
                let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
                let got = item_figures(t, *item, 2.0).discrimination;
                if vx > 1e-9 && vy > 1e-9 {
                    prop_assert!((got.unwrap() - cov / (vx * vy).sqrt()).abs() < 1e-9);
                }
            }
        }
    }
}
