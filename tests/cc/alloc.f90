! alloc.f90 -- ALLOCATE and DEALLOCATE as tests/cc/run.sh builds them with
! tiermem-fortran: arrays of an intrinsic type (inline mallocs in flang 16),
! a derived type and one with an allocatable component (flang's runtime,
! _FortranAAllocatableAllocate), the component itself, and reallocation on
! assignment.  Prints one line the test checks.
module shapes
  implicit none
  type :: point
    real(8) :: x, y
  end type
  type :: bag
    integer :: n = 0
    real(8), allocatable :: items(:)
  end type
end module

program alloc
  use shapes
  implicit none
  real(8), allocatable :: a(:), b(:,:), c(:)
  type(point), allocatable :: p, ps(:)
  type(bag), allocatable :: bg
  integer :: i

  allocate(a(100000))
  allocate(b(300, 200))
  allocate(p)
  allocate(ps(5000))
  allocate(bg)
  allocate(bg%items(20000))
  a = 1
  b = 2
  p = point(3, 4)
  do i = 1, size(ps)
    ps(i) = point(i, 0)
  end do
  bg%n = size(bg%items)
  bg%items = 0.5d0
  c = a                  ! reallocation on assignment
  c = [c, 7d0]           ! and again, one longer
  print '(a,f0.1,1x,f0.1,1x,f0.1,1x,f0.1,1x,i0,1x,f0.1)', 'fortran ', &
      sum(a), sum(b), p%x + p%y, sum(ps%x), size(c), sum(bg%items)
  deallocate(a, b, p, ps)
  deallocate(bg)
  deallocate(c)
end program
