// Package eval measures retrieval quality as the Drum2Bass paper does: the normalized
// rank of the compatible loop among the candidates (mean R_mn and median R_md; random is
// 0.5), Recall@K, and inter-list diversity ILD@L over the seeds' top lists.
package eval
